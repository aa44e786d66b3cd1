import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'

/** The ops page and the headers it is served with. */
export interface OpsPage {
  html: string
  headers: Readonly<Record<string, string>>
}

const sha256 = (text: string) => `'sha256-${createHash('sha256').update(text).digest('base64')}'`
/** The content of each inline `<tag>…</tag>`: the only script and style this page may run (CSP hashes). */
const inline = (html: string, tag: string) =>
  [...html.matchAll(new RegExp(`<${tag}>([\\s\\S]*?)</${tag}>`, 'g'))].map((match) => sha256(match[1]!))

/**
 * GET /ops: ops.html, one static page (no build step) with its script and style inline. It holds no data;
 * it asks for the admin token and calls the admin JSON API with it as a bearer header. Its CSP lets only
 * that script and style run (by hash), and lets it talk only to this origin.
 */
export function loadOpsPage(): OpsPage {
  const html = readFileSync(new URL('./ops.html', import.meta.url), 'utf8')
  const policy = [
    "default-src 'none'",
    `script-src ${inline(html, 'script').join(' ')}`,
    `style-src ${inline(html, 'style').join(' ')}`,
    "connect-src 'self'",
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ')
  return {
    html,
    headers: {
      'content-type': 'text/html; charset=utf-8',
      'content-security-policy': policy,
      'cache-control': 'no-store',
      'referrer-policy': 'no-referrer',
      'x-content-type-options': 'nosniff',
      'x-frame-options': 'DENY',
    },
  }
}

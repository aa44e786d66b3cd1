import type { ChildProcess } from 'node:child_process'
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { type BrowserContext, chromium, type Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ADMIN_TOKEN, startExample, stop } from './example-process.js'

/** Debian's browser; playwright-core only drives it and never downloads one of its own. */
const CHROMIUM = '/usr/bin/chromium'
const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
]
/** Screenshots land in the repository's ignored .tmp/ folder, as test artifacts. */
const ARTIFACTS = fileURLToPath(new URL('../../../.tmp/', import.meta.url))

/** scripts/test.sh installs Chromium; a direct `vitest run` as root on Debian installs it here too. */
function ensureChromium(): void {
  if (existsSync(CHROMIUM)) return
  if (process.getuid?.() === 0 && existsSync('/usr/bin/apt-get')) {
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
    const lock = ['-o', 'DPkg::Lock::Timeout=300']
    execFileSync('apt-get', [...lock, 'update', '-qq'], { env, stdio: 'inherit' })
    execFileSync('apt-get', [...lock, 'install', '-y', '-qq', 'chromium'], { env, stdio: 'inherit' })
  }
  if (!existsSync(CHROMIUM)) {
    throw new Error(`the ops page test needs Debian's chromium at ${CHROMIUM}: apt-get install -y chromium`)
  }
}

interface BrowserGlobals {
  document: { querySelector(selector: string): { textContent: string | null } | null }
  pwned?: string
}

/** Waits until the first element matching `selector` has text matching `pattern` (the page refreshes each second). */
async function waitForText(page: Page, selector: string, pattern: RegExp, timeout = 10_000): Promise<void> {
  try {
    await page.waitForFunction(
      ([sel, source, flags]) => {
        // Runs in the page; this package's types have no DOM.
        const { document } = globalThis as unknown as BrowserGlobals
        return new RegExp(source!, flags).test(document.querySelector(sel!)?.textContent ?? '')
      },
      [selector, pattern.source, pattern.flags],
      { timeout },
    )
  } catch (error) {
    const text = await page
      .locator(selector)
      .first()
      .textContent({ timeout: 100 })
      .catch(() => null)
    throw new Error(`${selector} never matched ${pattern} (now: ${JSON.stringify(text)}): ${error}`)
  }
}

const cell = (org: string, user: string, level: string) =>
  `[data-org="${org}"] tr[data-user="${user}"] td[data-level="${level}"] .figures`

/**
 * The ops page in a real headless Chromium against a started example (memory store): log in with the
 * admin token, watch buckets fall under real traffic, move an org to another tier from the page.
 */
export function describeOpsPage(framework: string, exampleDir: string): void {
  describe(`ops page in headless Chromium: ${framework}`, () => {
    let url = ''
    let child: ChildProcess | undefined
    let context: BrowserContext | undefined
    let profile = ''
    beforeAll(async () => {
      ensureChromium()
      const started = await startExample(exampleDir, undefined)
      child = started.child
      url = started.url
      profile = mkdtempSync(join(tmpdir(), 'tollgate-chromium-')) // a fresh --user-data-dir
      context = await chromium.launchPersistentContext(profile, {
        executablePath: CHROMIUM,
        headless: true,
        chromiumSandbox: false,
        args: CHROMIUM_FLAGS,
      })
    }, 600_000)
    afterAll(async () => {
      await context?.close()
      if (child) await stop(child)
      if (profile) rmSync(profile, { recursive: true, force: true })
    })

    /**
     * A page whose script errors and console errors (CSP violations among them) are collected; answers the
     * test provokes (a refused token, an unknown org, the favicon) are expected, not problems.
     */
    async function openPage(): Promise<{ page: Page; problems: string[] }> {
      const page = await context!.newPage()
      const problems: string[] = []
      page.on('pageerror', (error) => problems.push(`pageerror: ${error.message}`))
      page.on('console', (message) => {
        if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) {
          problems.push(`console: ${message.text()}`)
        }
      })
      await page.goto(`${url}/ops`)
      return { page, problems }
    }

    async function logIn(page: Page, token: string): Promise<void> {
      await page.fill('#token', token)
      await page.click('#login button')
    }

    const hello = (key: string) => fetch(`${url}/api/hello`, { headers: { authorization: `Bearer ${key}` } })

    it('shows tiers, orgs and live buckets, and moves an org to another tier', async () => {
      // The free tier refills 1 token an hour from now on, so what the page shows is what traffic spent.
      const slow = await fetch(`${url}/admin/tiers/free`, {
        method: 'PUT',
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        body: JSON.stringify({ capacity: 10, refill: { tokens: 1, per: '1h' } }),
      })
      expect(slow.status).toBe(200)

      const { page, problems } = await openPage()
      const adminCalls: Promise<Record<string, string>>[] = []
      page.on('request', (request) => {
        if (new URL(request.url()).pathname.startsWith('/admin/')) adminCalls.push(request.allHeaders())
      })

      await logIn(page, 'not-the-token')
      await waitForText(page, '#status', /token was refused/)
      expect(await page.isVisible('#dashboard')).toBe(false)

      await logIn(page, ADMIN_TOKEN)
      await waitForText(page, '#status', /^Live/)
      expect(await page.isVisible('#login')).toBe(false)
      expect(await page.inputValue('#token')).toBe('') // the token is not left in the form
      await waitForText(page, '#tiers tr[data-tier="free"] td[data-level="user"]', /^10 burst, 1\/h$/)
      await waitForText(page, '#tiers tr[data-tier="free"] td[data-level="org"]', /^50 burst, 5\/h$/)
      await waitForText(page, '#tiers tr[data-tier="premium"] td[data-level="user"]', /^100 burst, 100\/s$/)
      await waitForText(page, '[data-org="acme"] .org-tier', /^free$/)
      await waitForText(page, '[data-org="globex"] .org-tier', /^premium$/)
      await waitForText(page, cell('acme', 'alice', 'user'), /^10 \/ 10$/)
      await waitForText(page, cell('acme', 'dave', 'org'), /^50 \/ 50$/)

      for (let i = 0; i < 3; i++) expect((await hello('free-alice')).status).toBe(200)
      // The page refreshes by itself: the numbers fall without a reload.
      await waitForText(page, cell('acme', 'alice', 'user'), /^7 \/ 10$/)
      await waitForText(page, cell('acme', 'alice', 'org'), /^47 \/ 50$/)
      await waitForText(page, cell('acme', 'dave', 'user'), /^10 \/ 10$/)

      await page.selectOption('[data-org="acme"] select', 'premium')
      await page.click('[data-org="acme"] button')
      await waitForText(page, '#notice', /^Moved acme to premium\.$/)
      await waitForText(page, '[data-org="acme"] .org-tier', /^premium$/)
      await waitForText(page, cell('acme', 'alice', 'user'), / \/ 100$/)
      await waitForText(page, cell('acme', 'alice', 'org'), / \/ 500$/)
      // The API applies the tier the page chose.
      const moved = await hello('free-alice')
      expect(moved.headers.get('ratelimit-policy')).toBe(
        '"user";q=100;w=1, "org";q=500;w=1, "global";q=5000;w=1',
      )

      mkdirSync(ARTIFACTS, { recursive: true })
      const screenshot = join(ARTIFACTS, `ops-page-${framework}.png`)
      await page.screenshot({ path: screenshot, fullPage: true })
      expect(statSync(screenshot).size).toBeGreaterThan(1000)

      // Every admin call carried the token as a bearer header, and no cookie exists or went along.
      const headers = await Promise.all(adminCalls)
      expect(headers.length).toBeGreaterThan(3)
      for (const sent of headers) {
        expect(sent.cookie).toBeUndefined()
        expect(sent.authorization).toMatch(/^Bearer /)
      }
      expect(headers.at(-1)!.authorization).toBe(`Bearer ${ADMIN_TOKEN}`)
      expect(await context!.cookies()).toEqual([])
      expect(problems).toEqual([])
      await page.close()
    }, 60_000)

    it('shows hostile org and user ids as text, never as markup', async () => {
      const { page, problems } = await openPage()
      const org = `<img src=x onerror="window.pwned='org'">acme`
      const user = `<script>window.pwned='user'</script><b>mallory</b>`
      // The demo tenants are fixed, so the hostile ids come in through the answer the page reads.
      await page.route(`${url}/admin/orgs`, (route) =>
        route.fulfill({
          contentType: 'application/json',
          body: JSON.stringify({
            orgs: [
              {
                org,
                tier: 'free',
                users: [{ user, buckets: [{ level: 'user', remaining: 3, limit: 10, resetAfterMs: 0 }] }],
              },
            ],
          }),
        }),
      )
      await logIn(page, ADMIN_TOKEN)
      await waitForText(page, '#orgs .org-id', /mallory|acme/)
      expect(await page.textContent('#orgs .org-id')).toBe(org)
      expect(await page.textContent('#orgs tr[data-user] th')).toBe(user)
      expect(await page.getAttribute('#orgs section', 'data-org')).toBe(org)
      // Moving it goes to the real server, the id encoded into the path: a 404 shown as text.
      await page.click('#orgs button')
      await waitForText(page, '#notice', /^Moving .* failed: No org /)
      expect(await page.locator('#orgs img, #orgs b, #orgs script, #notice *').count()).toBe(0)
      expect(await page.evaluate(() => (globalThis as unknown as BrowserGlobals).pwned)).toBeUndefined()
      expect(problems).toEqual([])
      await page.close()
    }, 60_000)
  })
}

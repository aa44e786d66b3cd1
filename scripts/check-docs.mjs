#!/usr/bin/env node
// Docs that run: every ```ts block of README.md, packages/*/README.md and docs/*.md is written to
// docs/.blocks/ as a module of its own and typechecked against the workspace packages' sources.
// A block's info string says what else happens to it (docs/test/blocks.test.ts):
//   ```ts             runs: imported in a test, must not throw (servers it starts are closed again);
//   ```ts quickstart  runs, and must answer GET / and refuse past its limit;
//   ```ts excerpt     typechecks only (it needs what the page cannot give, e.g. a Redis server).
import { execFileSync } from 'node:child_process'
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

export const root = resolve(dirname(fileURLToPath(import.meta.url)), '..')
export const blocksDir = join(root, 'docs', '.blocks')

function markdownFiles() {
  const files = [join(root, 'README.md')]
  for (const pkg of readdirSync(join(root, 'packages'))) {
    const readme = join(root, 'packages', pkg, 'README.md')
    try {
      readFileSync(readme)
      files.push(readme)
    } catch {}
  }
  for (const doc of readdirSync(join(root, 'docs')))
    if (doc.endsWith('.md')) files.push(join(root, 'docs', doc))
  return files
}

/** Every TypeScript block: where it is, its kind and its code. */
export function extractBlocks() {
  const blocks = []
  const fence = /^```(?:ts|typescript)([^\n]*)\n([\s\S]*?)^```\s*$/gm
  for (const file of markdownFiles()) {
    const text = readFileSync(file, 'utf8')
    const source = relative(root, file)
    let n = 0
    for (const match of text.matchAll(fence)) {
      const meta = match[1].trim().split(/\s+/)
      const kind = meta.includes('excerpt') ? 'excerpt' : meta.includes('quickstart') ? 'quickstart' : 'run'
      const line = text.slice(0, match.index).split('\n').length
      const name = `${source.replace(/[/.]/g, '_')}_${++n}.ts`
      blocks.push({ source, line, kind, name, file: join(blocksDir, name), code: match[2] })
    }
  }
  return blocks
}

export function writeBlocks() {
  rmSync(blocksDir, { recursive: true, force: true })
  mkdirSync(blocksDir, { recursive: true })
  const blocks = extractBlocks()
  for (const block of blocks) {
    writeFileSync(block.file, `// ${block.source}:${block.line} (${block.kind})\n${block.code}\nexport {}\n`)
  }
  return blocks
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const blocks = writeBlocks()
  const tsc = join(root, 'node_modules', '.bin', 'tsc')
  try {
    execFileSync(tsc, ['-p', join(root, 'docs', 'tsconfig.json')], { stdio: 'inherit' })
  } catch {
    console.error(
      'docs: a code block does not typecheck (docs/.blocks/<file>_<n>.ts names the page; line 1 the line)',
    )
    process.exit(1)
  }
  console.log(`docs: ${blocks.length} TypeScript blocks typecheck`)
}

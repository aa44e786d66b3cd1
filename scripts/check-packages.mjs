// Checks that every published package installs cleanly, as a user would get it: packs each one
// (`pnpm pack`), lints the tarball with publint and @arethetypeswrong/cli, installs all tarballs with their
// registry dependencies into a scratch project outside the workspace, typechecks a consumer with tsc
// (node16 and nodenext, ESM and CommonJS), and runs it from ESM and from CommonJS.
// Run through pnpm (`pnpm exec node scripts/check-packages.mjs`) after the packages are built.
import { execFile, execFileSync } from 'node:child_process'
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { promisify } from 'node:util'

const root = resolve(import.meta.dirname, '..')
const keep = process.argv.includes('--keep')
const scratch = mkdtempSync(join(tmpdir(), 'tollgate-consumer-'))
const tarballs = join(scratch, 'tarballs')
const project = join(scratch, 'project')
mkdirSync(tarballs)
mkdirSync(project)

const failures = []
const exec = promisify(execFile)
function run(command, args, options = {}) {
  return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], ...options })
}
function report(title, started, error) {
  if (!error) {
    console.log(`ok   ${title} (${Date.now() - started} ms)`)
    return
  }
  failures.push(title)
  console.log(`FAIL ${title}`)
  console.log(String(error.stdout ?? '') + String(error.stderr ?? '') || String(error))
}
function step(title, fn) {
  const started = Date.now()
  try {
    fn()
    report(title, started)
  } catch (error) {
    report(title, started, error)
  }
}
/** Runs commands two at a time (the machine has two cores), reporting each. */
async function parallel(jobs) {
  const queue = [...jobs]
  const worker = async () => {
    for (let job = queue.shift(); job; job = queue.shift()) {
      const started = Date.now()
      try {
        const { stdout } = await exec(job.command, job.args, { cwd: job.cwd ?? root, maxBuffer: 1 << 24 })
        job.check?.(stdout)
        report(job.title, started)
      } catch (error) {
        report(job.title, started, error)
      }
    }
  }
  await Promise.all([worker(), worker()])
}

const packages = readdirSync(join(root, 'packages'))
  .map((dir) => ({
    dir: join(root, 'packages', dir),
    manifest: readJson(join(root, 'packages', dir, 'package.json')),
  }))
  .filter(({ manifest }) => !manifest.private)
  .sort((a, b) => a.manifest.name.localeCompare(b.manifest.name))

function readJson(path) {
  return JSON.parse(readFileSync(path, 'utf8'))
}

const bin = (name) => join(root, 'node_modules', '.bin', name)

// 1. Pack each package, then lint the tarballs.
for (const pkg of packages) {
  const { name } = pkg.manifest
  step(`pack ${name}`, () => {
    const before = new Set(readdirSync(tarballs))
    run('pnpm', ['pack', '--pack-destination', tarballs], { cwd: pkg.dir })
    const made = readdirSync(tarballs).filter((f) => !before.has(f))
    if (made.length !== 1) throw new Error(`expected one tarball for ${name}, got ${made.join(', ')}`)
    pkg.tarball = join(tarballs, made[0])
  })
}
await parallel(
  packages
    .filter((pkg) => pkg.tarball)
    .flatMap((pkg) => [
      {
        title: `publint ${pkg.manifest.name}`,
        command: bin('publint'),
        args: ['run', pkg.tarball, '--strict', '--level', 'suggestion'],
        // publint exits 0 on suggestions; the packages are to have none either.
        check(out) {
          if (/Suggestions?:|Warnings?:|Errors?:/.test(out))
            throw Object.assign(new Error('publint'), { stdout: out })
        },
      },
      {
        title: `attw ${pkg.manifest.name}`,
        command: bin('attw'),
        args: [pkg.tarball, '--format', 'table-flipped', '--no-emoji', '--no-color'],
      },
    ]),
)

// 2. A scratch project outside the workspace: the tarballs (also as overrides, so @tollgate/* dependencies
// resolve to them and never to a registry) and each package's peers from the registry.
const entrySpecs = []
const dependencies = {}
const overrides = {}
const devDependencies = { '@types/node': readJson(join(root, 'package.json')).devDependencies['@types/node'] }
for (const pkg of packages) {
  if (!pkg.tarball) continue
  const { name, exports, peerDependencies = {}, devDependencies: dev = {} } = pkg.manifest
  dependencies[name] = `file:${pkg.tarball}`
  overrides[name] = `file:${pkg.tarball}`
  for (const [peer, range] of Object.entries(peerDependencies)) {
    dependencies[peer] ??= range
    const types = `@types/${peer.replace(/^@/, '').replace('/', '__')}`
    if (dev[types]) devDependencies[types] ??= dev[types]
  }
  for (const subpath of Object.keys(exports ?? { '.': null })) {
    if (subpath !== './package.json') entrySpecs.push(subpath === '.' ? name : `${name}/${subpath.slice(2)}`)
  }
}
writeFileSync(
  join(project, 'package.json'),
  `${JSON.stringify({ name: 'tollgate-consumer', private: true, dependencies, devDependencies, overrides }, null, 2)}\n`,
)
cpSync(join(root, 'test-consumer'), project, { recursive: true })
// The same application code as a CommonJS module.
cpSync(join(project, 'smoke.mts'), join(project, 'smoke.cts'))

// Every entry point, imported from ESM and required from CommonJS; tsc resolves each one's types too.
const ids = entrySpecs.map((_, i) => `entry${i}`)
const listing = `const entries = { ${entrySpecs.map((spec, i) => `${JSON.stringify(spec)}: ${ids[i]}`).join(', ')} }
for (const [spec, entry] of Object.entries(entries)) {
  if (typeof entry !== 'object' || entry === null) throw new Error(spec + ' did not load as a module')
}
console.log('loaded ' + Object.keys(entries).length + ' entry points')
`
writeFileSync(
  join(project, 'entries.mts'),
  `${entrySpecs.map((spec, i) => `import * as ${ids[i]} from '${spec}'`).join('\n')}\n${listing}export {}\n`,
)
writeFileSync(
  join(project, 'entries.cts'),
  `${entrySpecs.map((spec, i) => `import ${ids[i]} = require('${spec}')`).join('\n')}\n${listing}export {}\n`,
)

step('npm install of the tarballs into a scratch project', () => {
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--loglevel=error'], { cwd: project })
})

const tsc = join(root, 'node_modules', 'typescript', 'bin', 'tsc')
await parallel(
  ['tsconfig.node16.json', 'tsconfig.nodenext.json', 'tsconfig.node10.json'].map((config) => ({
    title: `tsc -p ${config}`,
    command: process.execPath,
    args: [tsc, '-p', config],
    cwd: project,
  })),
)
for (const file of ['entries.mjs', 'entries.cjs', 'smoke.mjs', 'smoke.cjs']) {
  step(`node ${file}`, () => {
    const out = run(process.execPath, [join('out', file)], { cwd: project })
    if (out.trim()) console.log(`     ${out.trim().split('\n').join('\n     ')}`)
  })
}

if (keep) console.log(`scratch project kept at ${scratch}`)
else rmSync(scratch, { recursive: true, force: true })
if (failures.length) {
  console.log(`package checks: ${failures.length} failed: ${failures.join('; ')}`)
  process.exit(1)
}
console.log(`package checks: ${packages.length} packages, ${entrySpecs.length} entry points, all clean`)

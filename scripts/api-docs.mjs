// Builds the API reference of every published package with TypeDoc, failing on any warning.
// Each package is converted on its own, with one module per entry of its `exports` map (the `source`
// condition names the TypeScript file), then the packages are merged into one site in .tmp/api.
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { Application, TSConfigReader } from 'typedoc'

const root = resolve(import.meta.dirname, '..')
const out = join(root, '.tmp', 'api')
const parts = join(root, '.tmp', 'api-json')
const configs = join(root, '.tmp', 'api-tsconfig')

/**
 * Types that a package's public API references without exporting them. Exporting them from the package
 * is the fix; each entry here is a known gap, listed so that any new one still fails the build.
 */
const knownUnexported = {
  '@tollgate/core': ['DurationUnit', 'Algorithm', 'LeakyMode'],
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

for (const dir of [parts, configs]) {
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { recursive: true })
}

let warnings = 0
const shared = { treatWarningsAsErrors: true, excludePrivate: true, excludeInternal: true, logLevel: 'Warn' }
for (const { dir, manifest } of packages) {
  const entryPoints = Object.entries(manifest.exports ?? {})
    .map(([, target]) => target?.source)
    .filter((source) => typeof source === 'string')
    .map((source) => join(dir, source))
  if (entryPoints.length === 0) {
    console.error(`api-docs: ${manifest.name} has no "source" entry in its exports`)
    process.exit(1)
  }
  // The package's compiler options over its sources only: its tests are not part of its API.
  const tsconfig = join(configs, `${manifest.name.replace('@', '').replace('/', '-')}.tsconfig.json`)
  writeFileSync(
    tsconfig,
    JSON.stringify({ extends: join(dir, 'tsconfig.json'), include: [join(dir, 'src')] }),
  )
  const app = await Application.bootstrapWithPlugins(
    {
      ...shared,
      name: manifest.name,
      entryPoints,
      entryPointStrategy: 'resolve',
      tsconfig,
      intentionallyNotExported: knownUnexported[manifest.name] ?? [],
      readme: 'none',
    },
    [new TSConfigReader()],
  )
  const project = await app.convert()
  if (!project) {
    console.error(`api-docs: ${manifest.name} could not be converted`)
    process.exit(1)
  }
  app.validate(project)
  if (app.logger.hasWarnings() || app.logger.hasErrors()) warnings++
  await app.generateJson(project, join(parts, `${manifest.name.replace('@', '').replace('/', '-')}.json`))
}

const merged = await Application.bootstrapWithPlugins({
  ...shared,
  name: 'tollgate',
  entryPoints: [join(parts, '*.json')],
  entryPointStrategy: 'merge',
  readme: join(root, 'README.md'),
})
const project = await merged.convert()
if (!project || warnings > 0 || merged.logger.hasWarnings() || merged.logger.hasErrors()) {
  console.error('api-docs: TypeDoc reported warnings or errors (see above)')
  process.exit(1)
}
await merged.generateDocs(project, out)
if (merged.logger.hasWarnings() || merged.logger.hasErrors()) {
  console.error('api-docs: TypeDoc reported warnings or errors while rendering (see above)')
  process.exit(1)
}
console.log(
  `api-docs: ${packages.length} packages documented in ${out.slice(root.length + 1)} with no warnings`,
)

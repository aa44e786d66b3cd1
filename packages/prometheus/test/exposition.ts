import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Registry } from 'prom-client'

/** One sample of the Prometheus text exposition format (version 0.0.4). */
export interface Sample {
  readonly name: string
  readonly labels: Readonly<Record<string, string>>
  readonly value: number
}

export interface Exposition {
  readonly samples: readonly Sample[]
  /** Metric family name → type, from `# TYPE` lines. */
  readonly types: ReadonlyMap<string, string>
  readonly help: ReadonlyMap<string, string>
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*/
const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*/

function parseValue(text: string, line: string): number {
  if (text === '+Inf') return Number.POSITIVE_INFINITY
  if (text === '-Inf') return Number.NEGATIVE_INFINITY
  if (text === 'NaN') return Number.NaN
  const value = Number(text)
  if (text === '' || Number.isNaN(value))
    throw new Error(`bad sample value ${JSON.stringify(text)} in: ${line}`)
  return value
}

/** Reads `{a="x",b="y\"z"}` from the start of `rest`; returns the labels and what follows. */
function parseLabels(rest: string, line: string): [Record<string, string>, string] {
  const labels: Record<string, string> = {}
  let i = 1
  for (;;) {
    while (rest[i] === ' ') i++
    if (rest[i] === '}') return [labels, rest.slice(i + 1)]
    const name = LABEL_NAME.exec(rest.slice(i))?.[0]
    if (!name || rest[i + name.length] !== '=' || rest[i + name.length + 1] !== '"') {
      throw new Error(`bad label at ${i} in: ${line}`)
    }
    i += name.length + 2
    let value = ''
    for (;;) {
      const c = rest[i]
      if (c === undefined) throw new Error(`unterminated label value in: ${line}`)
      i++
      if (c === '"') break
      if (c === '\\') {
        const escaped = rest[i++]
        if (escaped === 'n') value += '\n'
        else if (escaped === '\\' || escaped === '"') value += escaped
        else throw new Error(`bad escape \\${escaped} in: ${line}`)
      } else value += c
    }
    if (name in labels) throw new Error(`label ${name} twice in: ${line}`)
    labels[name] = value
    if (rest[i] === ',') i++
    else if (rest[i] !== '}') throw new Error(`expected , or } at ${i} in: ${line}`)
  }
}

/** Parses the text format strictly: anything malformed throws, so a test sees a broken exposition. */
export function parseExposition(text: string): Exposition {
  const samples: Sample[] = []
  const types = new Map<string, string>()
  const help = new Map<string, string>()
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue
    if (line.startsWith('#')) {
      const match = /^# (HELP|TYPE) ([a-zA-Z_:][a-zA-Z0-9_:]*) ?(.*)$/.exec(line)
      if (!match) continue // a plain comment
      const [, kind, name, rest] = match as unknown as [string, string, string, string]
      if (kind === 'TYPE') {
        if (!['counter', 'gauge', 'histogram', 'summary', 'untyped'].includes(rest)) {
          throw new Error(`bad TYPE in: ${line}`)
        }
        if (types.has(name)) throw new Error(`TYPE of ${name} twice`)
        types.set(name, rest)
      } else help.set(name, rest)
      continue
    }
    const name = NAME.exec(line)?.[0]
    if (!name) throw new Error(`bad sample line: ${line}`)
    let rest = line.slice(name.length)
    let labels: Record<string, string> = {}
    if (rest.startsWith('{')) [labels, rest] = parseLabels(rest, line)
    const fields = rest.trim().split(/\s+/)
    if (fields.length < 1 || fields.length > 2) throw new Error(`bad sample line: ${line}`)
    samples.push({ name, labels, value: parseValue(fields[0]!, line) })
  }
  for (const sample of samples) {
    const family = sample.name.replace(/_(bucket|sum|count)$/, '')
    if (!types.has(sample.name) && !types.has(family)) throw new Error(`sample ${sample.name} has no TYPE`)
  }
  return { samples, types, help }
}

/** The value of the one sample with this name whose labels include `labels`; throws unless exactly one matches. */
export function sampleValue(
  exposition: Exposition,
  name: string,
  labels: Record<string, string> = {},
): number {
  const found = select(exposition, name, labels)
  if (found.length !== 1) {
    throw new Error(`expected one ${name}${JSON.stringify(labels)}, found ${found.length}`)
  }
  return found[0]!.value
}

/** Every sample with this name whose labels include `labels`. */
export function select(exposition: Exposition, name: string, labels: Record<string, string> = {}): Sample[] {
  return exposition.samples.filter(
    (s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v),
  )
}

/** Sum of every sample with this name whose labels include `labels` (0 when there is none). */
export function sumOf(exposition: Exposition, name: string, labels: Record<string, string> = {}): number {
  return select(exposition, name, labels).reduce((sum, s) => sum + s.value, 0)
}

export interface ScrapeServer {
  readonly url: string
  scrape(): Promise<Exposition & { text: string; contentType: string | null }>
  close(): Promise<void>
}

/** A real HTTP server on loopback serving `GET /metrics` from the registry, as an app would. */
export async function serveMetrics(registry: Registry): Promise<ScrapeServer> {
  const server: Server = createServer((req, res) => {
    if (req.method !== 'GET' || req.url !== '/metrics') {
      res.writeHead(404).end()
      return
    }
    registry.metrics().then(
      (body) => res.writeHead(200, { 'content-type': registry.contentType }).end(body),
      (error: unknown) => res.writeHead(500).end(String(error)),
    )
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/metrics`
  return {
    url,
    async scrape() {
      const response = await fetch(url)
      if (response.status !== 200) throw new Error(`scrape answered ${response.status}`)
      const text = await response.text()
      return { ...parseExposition(text), text, contentType: response.headers.get('content-type') }
    },
    close: () => new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve()))),
  }
}

import { describeValue, ErrorCode, invalid, TollgateError } from './errors.js'

/** A chain level: a name, or a name with a fixed key used when the subject gives none (e.g. a global level). */
export type LevelSpec = string | { readonly name: string; readonly key?: string }

/** The chain's keys (`{ user: 'u1', org: 'acme' }`), or one key for the first level. */
export type Subject = string | Readonly<Record<string, string | undefined>>

export interface Level {
  readonly name: string
  readonly fixedKey: string | undefined
}

export function parseKey(key: unknown, field: string): string {
  if (typeof key !== 'string' || key.length === 0)
    throw invalid(ErrorCode.InvalidKey, field, key, 'a non-empty string')
  return key
}

export function parseLevels(specs: readonly LevelSpec[] | undefined): Level[] {
  if (specs !== undefined && (!Array.isArray(specs) || specs.length === 0)) {
    throw invalid(ErrorCode.InvalidOption, 'levels', specs, 'a non-empty array of level names')
  }
  const levels = (specs ?? ['key']).map((spec, i): Level => {
    const name = typeof spec === 'string' ? spec : spec?.name
    if (typeof name !== 'string' || name.length === 0 || name.includes('\u0000')) {
      throw invalid(ErrorCode.InvalidOption, `levels[${i}]`, spec, 'a non-empty level name')
    }
    const fixedKey = typeof spec === 'string' ? (spec === 'global' ? 'global' : undefined) : spec.key
    if (fixedKey !== undefined) parseKey(fixedKey, `levels[${i}].key`)
    return { name, fixedKey }
  })
  if (new Set(levels.map((l) => l.name)).size !== levels.length) {
    throw invalid(ErrorCode.InvalidOption, 'levels', specs, 'distinct level names')
  }
  return levels
}

export function unknownLevel(names: readonly string[], field: string, level: unknown): TollgateError {
  return new TollgateError(
    ErrorCode.UnknownLevel,
    `${field} must be one of ${names.map((n) => JSON.stringify(n)).join(', ')}; got ${describeValue(level)}`,
    { field, value: level },
  )
}

/** Turns a subject into one key per level (undefined where the chain has none). */
const namesOf = new WeakMap<readonly Level[], ReadonlySet<string>>()
/** The chain's level names, made once per chain. */
function levelNames(levels: readonly Level[]): ReadonlySet<string> {
  let names = namesOf.get(levels)
  if (!names) {
    names = new Set(levels.map((l) => l.name))
    namesOf.set(levels, names)
  }
  return names
}

export function subjectKeys(levels: readonly Level[], subject: Subject): (string | undefined)[] {
  const keys: (string | undefined)[] = new Array(levels.length)
  if (typeof subject === 'string') {
    parseKey(subject, 'subject')
    for (let i = 0; i < levels.length; i++) keys[i] = i === 0 ? subject : levels[i]!.fixedKey
    return keys
  }
  if (typeof subject !== 'object' || subject === null || Array.isArray(subject)) {
    throw invalid(ErrorCode.InvalidSubject, 'subject', subject, 'a key string or an object of level keys')
  }
  let given = 0
  for (let i = 0; i < levels.length; i++) {
    const level = levels[i]!
    const key = subject[level.name]
    if (key === undefined || key === null) keys[i] = level.fixedKey
    else {
      keys[i] = parseKey(key, `subject.${level.name}`)
      given++
    }
  }
  // A name that is no level's is refused. Counting the subject's names is cheaper than looking each one up;
  // only a subject with more names than keys given (an unknown one, or a level given as undefined) looks.
  let names = 0
  for (const _ in subject) names++
  if (names > given) {
    const known = levelNames(levels)
    for (const name in subject) {
      if (!known.has(name)) throw unknownLevel([...known], 'subject', name)
    }
  }
  return keys
}

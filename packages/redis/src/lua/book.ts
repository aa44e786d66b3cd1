import type { Policy, PolicyBook, Versions } from '@tollgate/core/store'
import { escapeValue } from '../history.js'

/** Lua string literal (a policy id or an escaped tier name holds nothing that needs more than quoting). */
function lua(text: string): string {
  return JSON.stringify(text)
}

function fullRefillMs(policy: Policy): number {
  return policy.tokens === 0 ? 0 : Math.ceil((policy.capacity * policy.per) / policy.tokens)
}

/**
 * The book as Lua: LEVEL_COUNT and the functions tier_policy(level, tier, t), base_policy(level), known_tier,
 * tier_moments, hold_ms.
 */
export function compileBook(book: PolicyBook): string {
  const lines: string[] = []
  const tierNames = [...book.tiers.keys()]
  lines.push(`local LEVEL_COUNT = ${book.levels.length}`)
  lines.push(
    `local DEFAULT_TIER = ${book.defaultTier === undefined ? 'false' : lua(escapeValue(book.defaultTier))}`,
  )
  lines.push('local function known_tier(name)')
  lines.push(
    tierNames.length === 0
      ? '  return false'
      : `  return ${tierNames.map((t) => `name == ${lua(escapeValue(t))}`).join(' or ')}`,
  )
  lines.push('end')

  const versionsReturn = (versions: Versions<Policy>, indent: string): string[] => {
    const out: string[] = []
    for (let v = versions.length - 1; v >= 0; v--) {
      const { since, value } = versions[v]!
      const ret = value === null ? 'return false' : `return ${lua(value.id)}`
      if (v === 0 && since === 0) out.push(`${indent}${ret}`)
      else out.push(`${indent}if t >= ${since} then ${ret} end`)
    }
    if (versions.length === 0 || versions[0]!.since !== 0) out.push(`${indent}return false`)
    return out
  }
  lines.push('local function tier_policy(lvl, tier, t)')
  book.levels.forEach((_, i) => {
    const branches: string[] = []
    for (const tier of tierNames) {
      const versions = book.tiers.get(tier)![i]
      if (!versions || versions.length === 0) continue
      branches.push(
        `    if tier == ${lua(escapeValue(tier))} then`,
        ...versionsReturn(versions, '      '),
        '    end',
      )
    }
    if (branches.length) lines.push(`  if lvl == ${i + 1} then`, ...branches, '  end')
  })
  lines.push('  return false', 'end')

  lines.push('local function base_policy(lvl)')
  book.base.forEach((policy, i) => {
    if (policy) lines.push(`  if lvl == ${i + 1} then return ${lua(policy.id)} end`)
  })
  lines.push('  return false', 'end')

  // Moments of runtime tier changes per level (configured versions hold from 0 and never move a bucket).
  const withMoments = book.levels.flatMap((_, i) =>
    tierNames.some((t) => (book.tiers.get(t)![i] ?? []).some((v) => v.since > 0)) ? [i + 1] : [],
  )
  lines.push(
    'local function tier_has_moments(lvl)',
    `  return ${withMoments.length ? withMoments.map((l) => `lvl == ${l}`).join(' or ') : 'false'}`,
    'end',
  )
  lines.push('local function tier_moments(lvl, forced, lo, hi, out)')
  book.levels.forEach((_, i) => {
    const moments: string[] = []
    for (const tier of tierNames) {
      for (const { since } of book.tiers.get(tier)![i] ?? []) {
        if (since > 0)
          moments.push(
            `    if (forced == '' or forced == ${lua(escapeValue(tier))}) and ${since} >= lo and ${since} <= hi then out[#out + 1] = ${since} end`,
          )
      }
    }
    if (moments.length) lines.push(`  if lvl == ${i + 1} then`, ...moments, '  end')
  })
  lines.push('end')

  // A key lives until its bucket is full under the slowest policy its level may be converted to, so a
  // change among the book's policies finds the state still there (see the README's key expiry note).
  lines.push('local function hold_ms(lvl)')
  book.levels.forEach((_, i) => {
    const ids = new Map<string, Policy>()
    const base = book.base[i]
    if (base) ids.set(base.id, base)
    for (const tier of tierNames)
      for (const v of book.tiers.get(tier)![i] ?? []) if (v.value) ids.set(v.value.id, v.value)
    if (ids.size > 1)
      lines.push(`  if lvl == ${i + 1} then return ${Math.max(...[...ids.values()].map(fullRefillMs))} end`)
  })
  lines.push('  return 0', 'end')

  // Blocking repeat offenders (core's block.ts): the rule, and which levels block (they send a refusal log key).
  const block = book.block
  lines.push(
    block
      ? `local BLOCK_AFTER, BLOCK_WITHIN, BLOCK_FOR = ${block.after}, ${block.withinMs}, ${block.forMs}`
      : 'local BLOCK_AFTER, BLOCK_WITHIN, BLOCK_FOR = false, 0, 0',
  )
  const blocking = block ? block.levels.flatMap((on, i) => (on ? [i + 1] : [])) : []
  lines.push(
    'local function blocks(lvl)',
    `  return ${blocking.length ? blocking.map((l) => `lvl == ${l}`).join(' or ') : 'false'}`,
    'end',
  )
  return lines.join('\n')
}

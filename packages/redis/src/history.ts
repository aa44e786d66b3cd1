import { type Policy, policyFromId, type Version } from '@tollgate/core/store'

/**
 * Registry histories as Redis holds them: "since=value;since=value", oldest first. Values are escaped so no
 * tier name can fake a separator; an empty value means the entry was removed at that moment.
 */
export function escapeValue(value: string): string {
  return value.replace(/[%;=]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`)
}

export function unescapeValue(value: string): string {
  return value.replace(/%(25|3B|3D)/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)))
}

function parse(history: string | null | undefined): { since: number; raw: string }[] | undefined {
  if (!history) return undefined
  const out: { since: number; raw: string }[] = []
  for (const part of history.split(';')) {
    const at = part.indexOf('=')
    if (at <= 0) continue
    const since = Number(part.slice(0, at))
    if (Number.isSafeInteger(since)) out.push({ since, raw: part.slice(at + 1) })
  }
  return out
}

export function parseAssignments(history: string | null | undefined): Version<string>[] | undefined {
  return parse(history)?.map(({ since, raw }) => ({ since, value: raw === '' ? null : unescapeValue(raw) }))
}

/** Custom-bucket versions; a value this build cannot read is left out. */
export function parseBuckets(history: string | null | undefined): Version<Policy>[] | undefined {
  const out: Version<Policy>[] = []
  for (const { since, raw } of parse(history) ?? []) {
    const policy = raw === '' ? null : policyFromId(unescapeValue(raw))
    if (policy !== undefined) out.push({ since, value: policy })
  }
  return history ? out : undefined
}

/** Policy-id versions, as the tier hash holds them. */
export function parseIds(history: string | null | undefined): Version<string>[] {
  return (parse(history) ?? []).map(({ since, raw }) => ({
    since,
    value: raw === '' ? null : unescapeValue(raw),
  }))
}

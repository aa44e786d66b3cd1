import {
  type Clock,
  DEFAULT_LIMITER_NAME,
  ErrorCode,
  MAX_VERSIONS,
  type RegistryChange,
  type RegistryStore,
  type TenantEntries,
  type TierEntry,
  TollgateError,
} from '@tollgate/core/store'
import type { Listener, StoreClient } from './client.js'
import type { Bounded, Run } from './connection.js'
import { escapeValue, parseAssignments, parseBuckets, parseIds, unescapeValue } from './history.js'
import { entryKey, legacyRegistryKeys, registryChannel, tierHashKey, tierVersionKey } from './keys.js'
import { entryWriteSource, script, tierWriteSource } from './scripts.js'

const entryWriteScript = script(entryWriteSource)
const tierWriteScript = script(tierWriteSource)

/**
 * Tier changes in one small hash (`{registry}` slot, read whole by each process when they change);
 * assignments and custom buckets in a hash beside each tenant's bucket (`…:reg`, same slot), which the
 * decision script reads itself. Every write appends a version stamped with Redis's clock and publishes on
 * `<prefix>registry` in the same script. A duplicated connection listens and re-subscribes after every
 * reconnect (also when Redis was down when it started); a check of the tier version counter every
 * `checkMs` covers messages missed meanwhile.
 */
export class RedisRegistry implements RegistryStore {
  private readonly listeners = new Set<(change?: RegistryChange) => void>()
  private subscriber: Listener | undefined
  private timer: NodeJS.Timeout | undefined
  private seenVersion: string | null | undefined
  private readonly channel: string

  constructor(
    private readonly client: StoreClient,
    private readonly prefix: string,
    private readonly checkMs: number,
    private readonly bucketKey: (namespace: string, level: string, key: string) => string,
    private readonly bounded: Bounded,
    private readonly run: Run,
    private readonly clock: Clock | undefined,
    /** Told of every change, before any listener, and of every write made here once it is done. */
    private readonly onChange: (change?: RegistryChange) => void = () => undefined,
  ) {
    this.channel = registryChannel(prefix)
  }

  private nowArg(): string {
    return this.clock ? String(Math.floor(this.clock())) : ''
  }

  async read(namespace: string, level: string, key: string): Promise<TenantEntries | undefined> {
    const entries = entryKey(this.bucketKey(namespace, level, key))
    const [a, b] = await this.bounded(() => this.client.hmget(entries, 'a', 'b'))
    if (!a && !b) return undefined
    return { assignment: parseAssignments(a), bucket: parseBuckets(b) }
  }

  // Typed by the contract: the parameters are RegistryStore.write's.
  readonly write: RegistryStore['write'] = async (namespace, kind, level, key, value, condition) => {
    const message = JSON.stringify({ kind, ns: namespace, level, key })
    const reply = await this.bounded(() =>
      this.run(
        entryWriteScript,
        [entryKey(this.bucketKey(namespace, level, key))],
        [
          kind === 'assignment' ? 'a' : 'b',
          value === null ? '' : escapeValue(value),
          condition ?? '',
          this.channel,
          message,
          this.nowArg(),
          MAX_VERSIONS,
        ],
      ),
    )
    this.onChange({ kind, namespace, level, key })
    return reply === 1
  }

  async tiers(namespace: string): Promise<TierEntry[]> {
    const legacy = legacyRegistryKeys(this.prefix)
    const [found, all] = await this.bounded(() =>
      Promise.all([this.client.exists(...legacy), this.client.hgetall(tierHashKey(this.prefix, namespace))]),
    )
    if (found > 0) {
      throw new TollgateError(
        ErrorCode.StoreLayout,
        `Redis holds a tollgate registry in the layout of an earlier release (${legacy.join(', ')}). ` +
          'Run migrateRegistry({ client, prefix }) from @tollgate/redis once (it moves every tier change, ' +
          'assignment and custom bucket to the current layout), then restart.',
        { field: 'prefix', value: this.prefix },
      )
    }
    const entries: TierEntry[] = []
    for (const [field, history] of Object.entries(all)) {
      const at = field.indexOf('=')
      if (at < 0) continue
      entries.push({
        tier: unescapeValue(field.slice(0, at)),
        level: unescapeValue(field.slice(at + 1)),
        versions: parseIds(history),
      })
    }
    return entries
  }

  async writeTier(namespace: string, tier: string, level: string, policyId: string): Promise<void> {
    await this.bounded(() =>
      this.run(
        tierWriteScript,
        [tierHashKey(this.prefix, namespace), tierVersionKey(this.prefix)],
        [
          `${escapeValue(tier)}=${escapeValue(level)}`,
          policyId,
          this.channel,
          JSON.stringify({ kind: 'tier', ns: namespace }),
          this.nowArg(),
          MAX_VERSIONS,
        ],
      ),
    )
    this.onChange({ kind: 'tier', namespace })
  }

  subscribe(listener: (change?: RegistryChange) => void): () => void {
    this.listeners.add(listener)
    this.start()
    return () => {
      this.listeners.delete(listener)
      if (this.listeners.size === 0) void this.stop()
    }
  }

  async close(): Promise<void> {
    this.listeners.clear()
    await this.stop()
  }

  private notify(change?: RegistryChange): void {
    this.onChange(change)
    for (const listener of this.listeners) {
      try {
        listener(change)
      } catch {
        // One failing listener must not starve the others.
      }
    }
  }

  private start(): void {
    if (this.subscriber) return
    // Changes made while nobody listened: reload once listening, after every (re)subscription.
    this.subscriber = this.client.listen(
      this.channel,
      (message) => this.notify(parseChange(message)),
      () => this.notify(),
    )
    void this.checkVersion()
    this.timer = setInterval(() => void this.checkVersion(), this.checkMs)
    this.timer.unref?.()
  }

  /** The safety net: a tier change whose message was lost still bumps the version counter. */
  private async checkVersion(): Promise<void> {
    let version: string | null
    try {
      version = await this.bounded(() => this.client.get(tierVersionKey(this.prefix)))
    } catch {
      return
    }
    if (this.seenVersion !== undefined && version !== this.seenVersion) this.notify({ kind: 'tier' })
    this.seenVersion = version
  }

  private async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer)
    this.timer = undefined
    const subscriber = this.subscriber
    this.subscriber = undefined
    if (!subscriber) return
    try {
      await this.bounded(() => subscriber.quit())
    } catch {
      // Quit could not be sent in time: drop the connection instead.
    } finally {
      subscriber.disconnect()
    }
  }
}

const kinds: readonly string[] = ['tier', 'assignment', 'bucket']

/** A change message, or undefined ("reload everything") for anything this version cannot read. */
function parseChange(message: string): RegistryChange | undefined {
  try {
    const parsed = JSON.parse(message) as { kind?: unknown; ns?: unknown; level?: unknown; key?: unknown }
    if (typeof parsed.kind === 'string' && kinds.includes(parsed.kind)) {
      return {
        kind: parsed.kind as RegistryChange['kind'],
        // Releases before names sent none: theirs were the default limiter's changes.
        namespace: typeof parsed.ns === 'string' ? parsed.ns : DEFAULT_LIMITER_NAME,
        level: typeof parsed.level === 'string' ? parsed.level : undefined,
        key: typeof parsed.key === 'string' ? parsed.key : undefined,
      }
    }
  } catch {
    // fall through
  }
  return undefined
}

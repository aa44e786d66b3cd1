import { LRUCache } from 'lru-cache'
import type { BucketState } from './algorithm.js'

/** The numbers of a policy a state was written under (a Policy has them, so does a snapshot's state). */
export interface Scale {
  readonly capacity: number
  readonly tokens: number
  readonly per: number
}

/** A state to read a slot into (`read` fills every field). */
export const emptyState = (): BucketState => ({ tat: 0, frac: 0, capacity: 0, tokens: 0, per: 0, epoch: 0 })

const FIRST_SLOTS = 1024
/** Passed to lru-cache's get, which would otherwise make an options object per call. */
const getOptions = {}

/**
 * The in-process buckets, compact: lru-cache maps a bucket id to a slot, a small integer (no boxing), and a
 * slot's state lives in typed arrays (tat, frac and epoch as doubles, the policy as an index into the
 * policies written so far). No object per bucket: 28 bytes of state beside lru-cache's own entry and the id,
 * where a BucketState object with its boxed doubles took about 100. lru-cache stays the eviction engine;
 * an evicted slot is reused by the next new bucket, so a key flood allocates nothing but the id strings.
 */
export class BucketTable {
  readonly maxKeys: number
  evictions = 0
  private readonly slots: LRUCache<string, number>
  private tat: Float64Array
  private frac: Float64Array
  private epoch: Float64Array
  private policy: Uint32Array
  private used = 0
  private readonly free: number[] = []
  /** Every (capacity, tokens, per) a state was written under, by index; few, whatever the number of keys. */
  private readonly scales: Scale[] = []
  private readonly scaleIndex = new Map<string, number>()
  /** Policies already interned, by identity: the hot path finds its index without building a string. */
  private readonly known = new Map<Scale, number>()
  private evicted: string[] = []
  private readonly recentScales: Scale[] = []
  private readonly recentIndexes: number[] = []
  private recentNext = 0
  private readonly collectEvicted: boolean

  /** `collectEvicted`: keep the ids of evicted buckets for takeEvicted (a store with an onEvict). */
  constructor(maxKeys: number, collectEvicted = false) {
    this.maxKeys = maxKeys
    this.collectEvicted = collectEvicted
    const first = Math.min(maxKeys, FIRST_SLOTS)
    this.tat = new Float64Array(first)
    this.frac = new Float64Array(first)
    this.epoch = new Float64Array(first)
    this.policy = new Uint32Array(first)
    this.slots = new LRUCache<string, number>({
      max: maxKeys,
      dispose: (slot, id, reason) => {
        this.free.push(slot)
        if (reason !== 'evict') return
        this.evictions++
        if (this.collectEvicted) this.evicted.push(id)
      },
    })
  }

  get size(): number {
    return this.slots.size
  }

  /** The slot of a bucket (now the most recently used), or -1 when none is held. */
  find(id: string): number {
    return this.slots.get(id, getOptions) ?? -1
  }

  /** Writes slot's state into `into` and returns it (a caller's scratch object: no allocation). */
  read(slot: number, into: BucketState): BucketState {
    const scale = this.scales[this.policy[slot]!]!
    into.tat = this.tat[slot]!
    into.frac = this.frac[slot]!
    into.capacity = scale.capacity
    into.tokens = scale.tokens
    into.per = scale.per
    into.epoch = this.epoch[slot]!
    return into
  }

  /** The state owing `debt` sub-units under `policy`, counted from `origin` (now, or 0 when frozen). */
  writeDebt(slot: number, id: string, debt: number, policy: Scale, origin: number, epoch: number): void {
    const k = policy.tokens === 0 ? 1 : policy.tokens
    this.write(slot, id, origin + Math.floor(debt / k), debt % k, this.scaleOf(policy), epoch)
  }

  /** Writes a state into its slot, or (slot -1) into a new one, making room by evicting the least recently used. */
  write(slot: number, id: string, tat: number, frac: number, scale: number, epoch: number): void {
    let at = slot
    if (at < 0) {
      if (this.slots.size >= this.maxKeys) this.slots.pop()
      at = this.allocate()
      this.slots.set(id, at)
    }
    this.tat[at] = tat
    this.frac[at] = frac
    this.epoch[at] = epoch
    this.policy[at] = scale
  }

  /** A state from outside the hot path (a snapshot): its scale is interned by value, not by identity. */
  set(id: string, state: BucketState): void {
    const { capacity, tokens, per } = state
    this.write(
      this.slots.peek(id) ?? -1,
      id,
      state.tat,
      state.frac,
      this.intern(capacity, tokens, per),
      state.epoch,
    )
  }

  delete(id: string): boolean {
    return this.slots.delete(id)
  }

  clear(): void {
    this.slots.clear()
  }

  /** Every bucket held, least recently used last, as fresh objects (export, purge); deleting while iterating is safe. */
  *entries(): IterableIterator<[string, BucketState]> {
    for (const [id, slot] of this.slots.entries()) {
      yield [id, this.read(slot, emptyState())]
    }
  }

  /** Ids evicted since the last call, for the store's onEvict (told after a decision, never inside it). */
  takeEvicted(): string[] | undefined {
    if (this.evicted.length === 0) return undefined
    const ids = this.evicted
    this.evicted = []
    return ids
  }

  private allocate(): number {
    const reused = this.free.pop()
    if (reused !== undefined) return reused
    if (this.used === this.tat.length) this.grow()
    return this.used++
  }

  private grow(): void {
    const size = Math.min(this.maxKeys, this.tat.length * 2)
    const widen = <T extends Float64Array | Uint32Array>(from: T, to: T): T => {
      to.set(from)
      return to
    }
    this.tat = widen(this.tat, new Float64Array(size))
    this.frac = widen(this.frac, new Float64Array(size))
    this.epoch = widen(this.epoch, new Float64Array(size))
    this.policy = widen(this.policy, new Uint32Array(size))
  }

  private scaleOf(scale: Scale): number {
    // One of the last few policies again (the common case: a chain's handful): no lookup at all.
    const recent = this.recentScales
    for (let i = 0; i < recent.length; i++) if (recent[i] === scale) return this.recentIndexes[i]!
    const known = this.known.get(scale) ?? this.learn(scale)
    recent[this.recentNext] = scale
    this.recentIndexes[this.recentNext] = known
    this.recentNext = (this.recentNext + 1) % 4
    return known
  }

  private learn(scale: Scale): number {
    const index = this.intern(scale.capacity, scale.tokens, scale.per)
    // Policy objects come and go with the tier book: keep the identity shortcut bounded.
    if (this.known.size >= 4096) this.known.clear()
    this.known.set(scale, index)
    return index
  }

  /** The index of these numbers among the scales (added on first sight). */
  private intern(capacity: number, tokens: number, per: number): number {
    const key = `${capacity}:${tokens}:${per}`
    let index = this.scaleIndex.get(key)
    if (index === undefined) {
      index = this.scales.length
      this.scales.push({ capacity, tokens, per })
      this.scaleIndex.set(key, index)
    }
    return index
  }
}

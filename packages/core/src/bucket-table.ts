import type { BucketState } from './algorithm.js'
import { namespacedId, splitNamespacedId } from './ids.js'
import { hashKey, KeyIndex } from './key-index.js'

/** The numbers of a policy a state was written under (a Policy has them, so does a snapshot's state). */
export interface Scale {
  readonly capacity: number
  readonly tokens: number
  readonly per: number
}

/** A state to read a slot into (`read` fills every field). */
export const emptyState = (): BucketState => ({ tat: 0, frac: 0, capacity: 0, tokens: 0, per: 0, epoch: 0 })

/**
 * The buckets of one (limiter name, level), keyed by the caller's own key: a decision builds no id string,
 * so a key flood allocates nothing the table keeps beyond the keys it was given.
 */
export interface LevelTable {
  readonly namespace: string
  readonly level: string
  /** key → slot. */
  readonly slots: KeyIndex
  /** The most and the least recently used slot of this table's list (-1: empty). */
  newest: number
  oldest: number
  /**
   * The key found last and its slot (undefined: none), so the hot keys of a chain (a global level, an org, a
   * tenant asking again) skip hashing and probing: in a 3-level profile the hash alone took 12% of a decision.
   */
  lastKey: string | undefined
  lastSlot: number
}

const FIRST_SLOTS = 1024
const NONE = -1
const STATE_STRIDE = 4
/** A slot's links: newer and older neighbour in its table's recency list, and its key's hash. */
const LINK_STRIDE = 3
/** A table's name among the tables: the id its buckets would have with an empty key. */
const tableName = (namespace: string, level: string) => namespacedId(namespace, level, '')

/**
 * The in-process buckets, compact. One KeyIndex per (limiter name, level) maps a key to a slot, a small
 * integer, and a slot's state lives in typed arrays shared by every table: four doubles side by side (tat,
 * frac, epoch, and the policy as an index into the policies written so far), so a decision reads one cache
 * line of state, where a BucketState object with its boxed doubles took about 100 bytes.
 *
 * Recency is a doubly linked list per table threaded through one more shared array (newer, older, and the
 * key's hash, which lets an eviction unfile its slot without reading the key), so a hit moves its slot to
 * the front and an eviction takes the table's oldest slot, both O(1). That is what lru-cache does, minus
 * what a bucket table never asks for (TTLs, sizes, per-call options, a second lookup inside set), and with
 * KeyIndex in place of a Map (in a 1M-key flood's profile, Map lookup and delete took 44% of the time; the
 * index takes 23%). Measured at 1M keys: 103 bytes per bucket (heap and array buffers) where lru-cache and
 * four arrays took 143.
 *
 * One bound for all tables (`maxKeys`): a table at or above its share (maxKeys / tables) makes room by
 * dropping its own least recently used bucket, one below it takes the room from the largest table. So a
 * flood of new keys on one level evicts that level's buckets, never the few, hot buckets of the levels
 * above it. An evicted slot is reused by the next new bucket.
 */
export class BucketTable {
  readonly maxKeys: number
  evictions = 0
  private readonly tables = new Map<string, LevelTable>()
  /** The tables of a chain's levels, by the level names array a book holds (one per limiter book). */
  private readonly byLevels = new WeakMap<readonly string[], LevelTable[]>()
  private count = 0
  // The last chain's tables: most decisions in a process are one limiter's.
  private lastLevels: readonly string[] | undefined
  private lastNamespace: string | undefined
  private lastTables: readonly LevelTable[] = []
  /** A slot's state side by side, STATE_STRIDE numbers (tat, frac, epoch, policy): one cache line to read. */
  private states: Float64Array
  /** A slot's neighbours in its table's recency list (newer, older; NONE at the ends) and its key's hash. */
  private links: Int32Array
  /** A slot's key. */
  private readonly keys: (string | undefined)[] = []
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
  /** The key find() last missed, and its hash. */
  private missedKey: string | undefined
  private missedHash = 0

  /** `collectEvicted`: keep the ids of evicted buckets for takeEvicted (a store with an onEvict). */
  constructor(maxKeys: number, collectEvicted = false) {
    this.maxKeys = maxKeys
    this.collectEvicted = collectEvicted
    const first = Math.min(maxKeys, FIRST_SLOTS)
    this.states = new Float64Array(first * STATE_STRIDE)
    this.links = new Int32Array(first * LINK_STRIDE)
  }

  get size(): number {
    return this.count
  }

  /** The table of each level of a chain (`levels` is a book's array, the same object decision after decision). */
  tablesOf(namespace: string, levels: readonly string[]): readonly LevelTable[] {
    if (levels === this.lastLevels && namespace === this.lastNamespace) return this.lastTables
    let tables = this.byLevels.get(levels)
    if (tables === undefined || tables[0]?.namespace !== namespace) {
      tables = levels.map((level) => this.table(namespace, level))
      this.byLevels.set(levels, tables)
    }
    this.lastLevels = levels
    this.lastNamespace = namespace
    this.lastTables = tables
    return tables
  }

  /** The table of one (limiter name, level), made on first use. */
  table(namespace: string, level: string): LevelTable {
    const name = tableName(namespace, level)
    let table = this.tables.get(name)
    if (table === undefined) {
      table = {
        namespace,
        level,
        slots: new KeyIndex(),
        newest: NONE,
        oldest: NONE,
        lastKey: undefined,
        lastSlot: NONE,
      }
      this.tables.set(name, table)
    }
    return table
  }

  /** The slot of a bucket (now the most recently used), or -1 when none is held. */
  find(table: LevelTable, key: string): number {
    let slot = table.lastSlot
    if (key !== table.lastKey) {
      const hash = hashKey(key)
      slot = table.slots.find(key, hash, this.keys)
      if (slot === NONE) {
        // A miss is most often followed by writing this key's new bucket: its hash is kept for that.
        this.missedKey = key
        this.missedHash = hash
        return NONE
      }
      table.lastKey = key
      table.lastSlot = slot
    }
    if (slot !== table.newest) {
      this.unlink(table, slot)
      this.pushNewest(table, slot)
    }
    return slot
  }

  /** Writes slot's state into `into` and returns it (a caller's scratch object: no allocation). */
  read(slot: number, into: BucketState): BucketState {
    const at = slot * STATE_STRIDE
    const states = this.states
    // `| 0`: an index read from a Float64Array is a double; as an int the element load stays on the fast path.
    const scale = this.scales[states[at + 3]! | 0]!
    into.tat = states[at]!
    into.frac = states[at + 1]!
    into.capacity = scale.capacity
    into.tokens = scale.tokens
    into.per = scale.per
    into.epoch = states[at + 2]!
    return into
  }

  /** The state owing `debt` sub-units under `policy`, counted from `origin` (now, or 0 when frozen). */
  writeDebt(
    slot: number,
    table: LevelTable,
    key: string,
    debt: number,
    policy: Scale,
    origin: number,
    epoch: number,
  ): void {
    const k = policy.tokens === 0 ? 1 : policy.tokens
    this.write(slot, table, key, origin + Math.floor(debt / k), debt % k, this.scaleOf(policy), epoch)
  }

  /** Writes a state into its slot, or (slot -1) into a new one, making room under the shared bound first. */
  write(
    slot: number,
    table: LevelTable,
    key: string,
    tat: number,
    frac: number,
    scale: number,
    epoch: number,
  ): void {
    let at = slot
    if (at < 0) {
      if (this.count >= this.maxKeys) this.makeRoom(table)
      at = this.allocate()
      const hash = key === this.missedKey ? this.missedHash : hashKey(key)
      this.keys[at] = key
      this.links[at * LINK_STRIDE + 2] = hash
      table.slots.add(hash, at)
      this.pushNewest(table, at)
      this.count++
    }
    const cell = at * STATE_STRIDE
    const states = this.states
    states[cell] = tat
    states[cell + 1] = frac
    states[cell + 2] = epoch
    states[cell + 3] = scale
  }

  /** A state from outside the hot path: its scale is interned by value, not by identity. */
  put(table: LevelTable, key: string, state: BucketState): void {
    const { capacity, tokens, per } = state
    const slot = table.slots.find(key, hashKey(key), this.keys)
    this.write(slot, table, key, state.tat, state.frac, this.intern(capacity, tokens, per), state.epoch)
  }

  remove(table: LevelTable, key: string): boolean {
    const slot = table.slots.find(key, hashKey(key), this.keys)
    if (slot === NONE) return false
    this.release(table, slot)
    return true
  }

  /** A state by its `namespacedId` (a snapshot's); false, and nothing written, for an id no store makes. */
  set(id: string, state: BucketState): boolean {
    const parts = splitNamespacedId(id)
    if (parts === undefined) return false
    this.put(this.table(parts[0], parts[1]), parts[2], state)
    return true
  }

  delete(id: string): boolean {
    const parts = splitNamespacedId(id)
    const table = parts && this.tables.get(tableName(parts[0], parts[1]))
    return table !== undefined && this.remove(table, parts![2])
  }

  clear(): void {
    for (const table of this.tables.values()) {
      table.slots.clear()
      table.newest = NONE
      table.oldest = NONE
      table.lastKey = undefined
    }
    this.keys.length = 0
    this.free.length = 0
    this.used = 0
    this.count = 0
  }

  /**
   * Every bucket held by its namespacedId, as fresh objects (export, purge), table by table, each least
   * recently used last; deleting the bucket just listed is safe.
   */
  *entries(): IterableIterator<[string, BucketState]> {
    for (const table of this.tables.values()) {
      for (let slot = table.newest; slot !== NONE; ) {
        const next = this.links[slot * LINK_STRIDE + 1]!
        const id = namespacedId(table.namespace, table.level, this.keys[slot]!)
        yield [id, this.read(slot, emptyState())]
        slot = next
      }
    }
  }

  /** Ids evicted since the last call, for the store's onEvict (told after a decision, never inside it). */
  takeEvicted(): string[] | undefined {
    if (this.evicted.length === 0) return undefined
    const ids = this.evicted
    this.evicted = []
    return ids
  }

  /** Drops one bucket for a new one in `table`: its own oldest when at its share, else the largest table's. */
  private makeRoom(table: LevelTable): void {
    let victim = table
    if (table.slots.size * this.tables.size < this.maxKeys) {
      for (const other of this.tables.values()) if (other.slots.size > victim.slots.size) victim = other
    }
    const slot = victim.oldest
    if (slot === NONE) return
    this.evictions++
    if (this.collectEvicted) this.evicted.push(namespacedId(victim.namespace, victim.level, this.keys[slot]!))
    this.release(victim, slot)
  }

  /** Forgets a slot's bucket and frees the slot. */
  private release(table: LevelTable, slot: number): void {
    if (table.lastSlot === slot) table.lastKey = undefined
    table.slots.remove(this.links[slot * LINK_STRIDE + 2]!, slot)
    this.unlink(table, slot)
    this.keys[slot] = undefined
    this.free.push(slot)
    this.count--
  }

  private pushNewest(table: LevelTable, slot: number): void {
    const links = this.links
    links[slot * LINK_STRIDE] = NONE
    links[slot * LINK_STRIDE + 1] = table.newest
    if (table.newest === NONE) table.oldest = slot
    else links[table.newest * LINK_STRIDE] = slot
    table.newest = slot
  }

  private unlink(table: LevelTable, slot: number): void {
    const links = this.links
    const newer = links[slot * LINK_STRIDE]!
    const older = links[slot * LINK_STRIDE + 1]!
    if (newer === NONE) table.newest = older
    else links[newer * LINK_STRIDE + 1] = older
    if (older === NONE) table.oldest = newer
    else links[older * LINK_STRIDE] = newer
  }

  private allocate(): number {
    const reused = this.free.pop()
    if (reused !== undefined) return reused
    if (this.used * LINK_STRIDE === this.links.length) this.grow()
    return this.used++
  }

  private grow(): void {
    const size = Math.min(this.maxKeys, (this.links.length / LINK_STRIDE) * 2)
    const widen = <T extends Float64Array | Int32Array>(from: T, to: T): T => {
      to.set(from)
      return to
    }
    this.states = widen(this.states, new Float64Array(size * STATE_STRIDE))
    this.links = widen(this.links, new Int32Array(size * LINK_STRIDE))
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

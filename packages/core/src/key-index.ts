/**
 * Key → slot for one table of buckets: open addressing with linear probing over one Int32Array of
 * (hash, slot) pairs, at most half full, deleted by backward shift (no tombstones, so keys that come and go
 * by the million keep every probe short).
 *
 * Why not a Map: under a flood of new keys every decision is a lookup that misses, then a delete and an
 * insert. A Map's miss reads a bucket, each entry of its chain and each entry's key string (to compare it):
 * four to six cache misses, and its delete as many again. Here a miss reads one run of adjacent pairs, and
 * a key string only when its 32-bit hash matches; a delete finds its pair by slot, never reading a key.
 *
 * The hash is seeded once per process (as V8 seeds its own), so a client cannot precompute keys that
 * collide.
 */
const EMPTY = -1
const FIRST_CAPACITY = 16
const SEED = (Math.random() * 0x1_0000_0000) | 0

/** A 32-bit hash of a key: FNV-1a over its UTF-16 code units from a per-process seed, then murmur3's mix. */
export function hashKey(key: string): number {
  let h = SEED
  for (let i = 0; i < key.length; i++) h = Math.imul(h ^ key.charCodeAt(i), 0x01000193)
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b)
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35)
  return h ^ (h >>> 16)
}

export class KeyIndex {
  size = 0
  /** capacity − 1 (capacity a power of two); pair i is cells[2i] (hash) and cells[2i + 1] (slot). */
  private mask = FIRST_CAPACITY - 1
  private cells = new Int32Array(FIRST_CAPACITY * 2).fill(EMPTY)

  /** The slot holding `key` (whose hash is `hash`), or -1; `keys` is each slot's key. */
  find(key: string, hash: number, keys: readonly (string | undefined)[]): number {
    const { cells, mask } = this
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const slot = cells[2 * i + 1]!
      if (slot === EMPTY || (cells[2 * i] === hash && keys[slot] === key)) return slot
    }
  }

  /** Files `slot` under `hash` (its key must not be filed already). */
  add(hash: number, slot: number): void {
    if ((this.size + 1) * 2 > this.mask + 1) this.resize((this.mask + 1) * 2)
    this.place(hash, slot)
    this.size++
  }

  /** Takes `slot`, filed under `hash`, out of the index. */
  remove(hash: number, slot: number): void {
    const { cells, mask } = this
    let hole = hash & mask
    while (cells[2 * hole + 1] !== slot) {
      // Not filed under this hash: nothing to take out (a run always ends at an empty pair).
      if (cells[2 * hole + 1] === EMPTY) return
      hole = (hole + 1) & mask
    }
    // Backward shift: a later pair of the run moves into the hole unless the hole lies before its home
    // (its first probe), where a lookup for it would never pass.
    for (let i = (hole + 1) & mask; cells[2 * i + 1] !== EMPTY; i = (i + 1) & mask) {
      const home = cells[2 * i]! & mask
      if (((i - home) & mask) >= ((i - hole) & mask)) {
        cells[2 * hole] = cells[2 * i]!
        cells[2 * hole + 1] = cells[2 * i + 1]!
        hole = i
      }
    }
    cells[2 * hole + 1] = EMPTY
    this.size--
  }

  clear(): void {
    this.mask = FIRST_CAPACITY - 1
    this.cells = new Int32Array(FIRST_CAPACITY * 2).fill(EMPTY)
    this.size = 0
  }

  private place(hash: number, slot: number): void {
    const { cells, mask } = this
    let i = hash & mask
    while (cells[2 * i + 1] !== EMPTY) i = (i + 1) & mask
    cells[2 * i] = hash
    cells[2 * i + 1] = slot
  }

  private resize(capacity: number): void {
    const old = this.cells
    this.mask = capacity - 1
    this.cells = new Int32Array(capacity * 2).fill(EMPTY)
    for (let i = 0; i < old.length; i += 2) if (old[i + 1] !== EMPTY) this.place(old[i]!, old[i + 1]!)
  }
}

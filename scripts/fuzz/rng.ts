/**
 * Deterministic randomness for the fuzzer: every case draws from its own generator, derived from
 * the run's seed, the target's name and the case's index, so one case is replayed on its own
 * (`--only TARGET --case N --seed S`) without running the cases before it.
 */

/** FNV-1a over a string, 32 bits */
export function hash32 (text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193) >>> 0
  }
  return h >>> 0
}

/** The seed of case `index` of `target` in a run seeded `seed` */
export function caseSeed (seed: number, target: string, index: number): number {
  return hash32(`${seed >>> 0}:${target}:${index}`)
}

/** A fresh random run seed (printed, so a run can be repeated) */
export function randomSeed (): number {
  return Math.floor(Math.random() * 0xffffffff) >>> 0
}

/** sfc32: small, fast, good enough for fuzzing, and fully determined by its seed */
export class Rng {
  private a: number
  private b: number
  private c: number
  private d: number
  /** the seed it started from (a case's seed, for fast-check's generators) */
  readonly seed: number

  constructor (seed: number) {
    this.seed = seed >>> 0
    this.a = 0x9e3779b9
    this.b = 0x243f6a88
    this.c = 0xb7e15162
    this.d = this.seed
    for (let i = 0; i < 12; i++) this.u32()
  }

  /** 32 random bits */
  u32 (): number {
    this.a >>>= 0; this.b >>>= 0; this.c >>>= 0; this.d >>>= 0
    const t = (this.a + this.b) | 0
    this.a = this.b ^ (this.b >>> 9)
    this.b = (this.c + (this.c << 3)) | 0
    this.c = (this.c << 21) | (this.c >>> 11)
    this.d = (this.d + 1) | 0
    const r = (t + this.d) | 0
    this.c = (this.c + r) | 0
    return r >>> 0
  }

  /** [0, 1) */
  float (): number {
    return this.u32() / 0x100000000
  }

  /** an integer in [0, n) */
  int (n: number): number {
    return n <= 0 ? 0 : Math.floor(this.float() * n)
  }

  /** an integer in [min, max] */
  range (min: number, max: number): number {
    return min + this.int(max - min + 1)
  }

  chance (p: number): boolean {
    return this.float() < p
  }

  pick<T> (items: readonly T[]): T {
    return items[this.int(items.length)]
  }

  /** one of `choices`, each with its weight */
  weighted<T> (choices: ReadonlyArray<readonly [T, number]>): T {
    const total = choices.reduce((s, [, w]) => s + w, 0)
    let r = this.float() * total
    for (const [value, w] of choices) {
      r -= w
      if (r < 0) return value
    }
    return choices[choices.length - 1][0]
  }

  bytes (n: number): Uint8Array {
    const out = new Uint8Array(n)
    for (let i = 0; i < n; i++) out[i] = this.u32() & 0xff
    return out
  }

  /** a small size, biased low: most are short, a few are long */
  size (max: number): number {
    const r = this.float()
    return Math.floor(max * r * r * r)
  }
}

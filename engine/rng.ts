// The one seeded random generator of the project (engine initialisers, dropout, randn, and every
// random choice in kd/: splits, noise, subsets, shuffles, augmentation, teacher draws, attacks).
// Two seedings, each kept bit-identical to what earlier runs drew:
//   new Rng(seed)            one 32-bit integer -> mulberry32 (the engine's initialisers);
//   Rng.keyed(...parts)      a key of numbers and strings -> sfc32 on a hash of the key, so that
//                            e.g. ('augment', seed, epoch, i) always names the same stream.
// Everything above the 32-bit core (uniform, int, normal, shuffle) is shared.

/** 32-bit avalanche hash (murmur3 finaliser); used to derive independent sub-seeds. */
export function mix32(x: number): number {
  x = Math.imul(x ^ (x >>> 16), 0x85ebca6b);
  x = Math.imul(x ^ (x >>> 13), 0xc2b2ae35);
  return (x ^ (x >>> 16)) >>> 0;
}

/** Combine seed parts (numbers or strings) into one 32-bit seed. */
export function hashSeed(...parts: (number | string)[]): number {
  let h = 0x9e3779b9;
  for (const p of parts) {
    if (typeof p === 'number') {
      // Split into two 32-bit halves so seeds above 2^32 still differ.
      const lo = p >>> 0;
      const hi = Math.floor(p / 4294967296) >>> 0;
      h = mix32(h ^ mix32(lo + 0x632be5ab));
      h = mix32(h ^ mix32(hi + 0x7f4a7c15));
    } else {
      for (let i = 0; i < p.length; i++) h = mix32(h ^ (p.charCodeAt(i) + 0x165667b1));
      h = mix32(h ^ p.length);
    }
  }
  return h;
}

/** A source of uniformly distributed 32-bit words. */
export interface RngCore {
  u32(): number;
}

/** mulberry32: one 32-bit word of state. */
class Mulberry32 implements RngCore {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  u32(): number {
    let t = (this.s = (this.s + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
}

/** sfc32: 128-bit state, good statistics for data work. */
class Sfc32 implements RngCore {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  constructor(s: number) {
    this.a = s;
    this.b = mix32(s ^ 0x6a09e667);
    this.c = mix32(s ^ 0xbb67ae85);
    this.d = 1;
    for (let i = 0; i < 12; i++) this.u32(); // warm up the state
  }
  u32(): number {
    const t = (((this.a + this.b) | 0) + this.d) | 0;
    this.d = (this.d + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }
}

export class Rng {
  private readonly core: RngCore;
  private spare: number | null = null;

  /** mulberry32 seeded with a 32-bit integer (what engine initialisers and `manualSeed` use), or any core. */
  constructor(seed: number | RngCore = 0) {
    this.core = typeof seed === 'number' ? new Mulberry32(seed) : seed;
  }

  /** sfc32 seeded by a key of numbers and strings: the same key always gives the same stream. */
  static keyed(...key: (number | string)[]): Rng {
    return new Rng(new Sfc32(hashSeed(...key)));
  }

  u32(): number {
    return this.core.u32();
  }

  /** Uniform in [0, 1). */
  next(): number {
    return this.core.u32() / 4294967296;
  }

  /** Uniform in [lo, hi) (default [0, 1)). */
  uniform(lo = 0, hi = 1): number {
    return lo + (hi - lo) * this.next();
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }

  /** Standard normal (Box-Muller, caching the second value). */
  normal(): number {
    if (this.spare !== null) {
      const v = this.spare;
      this.spare = null;
      return v;
    }
    let u = 0;
    while (u === 0) u = this.next();
    const v = this.next();
    const r = Math.sqrt(-2 * Math.log(u));
    this.spare = r * Math.sin(2 * Math.PI * v);
    return r * Math.cos(2 * Math.PI * v);
  }

  /** In-place Fisher-Yates shuffle. */
  shuffle<T extends { length: number; [i: number]: any }>(arr: T): T {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.int(i + 1);
      const t = arr[i];
      arr[i] = arr[j];
      arr[j] = t;
    }
    return arr;
  }
}

/** A random permutation of 0..n-1. */
export function permutation(n: number, rng: Rng): Int32Array {
  const p = new Int32Array(n);
  for (let i = 0; i < n; i++) p[i] = i;
  return rng.shuffle(p);
}

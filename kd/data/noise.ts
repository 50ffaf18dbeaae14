// Synthetic label noise for robustness experiments.
//
// Single-label (Int32Array), with probability `rate` per sample:
//   symmetric     - replace by a uniformly random class out of all C, the true class included
//                   (the textbook definition: the label actually changes with probability
//                   rate (C-1)/C, and T = (1 - rate) I + rate/C);
//   flip-to-other - replace by a uniformly random OTHER class (the label always changes; this is
//                   what 'symmetric' meant in run directories made before the two were named);
//   pairflip   - c -> (c+1) mod C;
//   asymmetric - c -> map[c], a fixed class-dependent target. Default map:
//                every class c > 0 flips to class 0 and class 0 never flips,
//                i.e. under-reporting / missed findings (class 0 is "normal"
//                in most medical label sets, the typical failure of labels
//                mined from reports); for binary this is "only 1 -> 0". Pass
//                `map` to model a known confusion (map[c] === c: never
//                flipped). `rate` is per flippable sample, so the overall
//                realised rate is lower because class 0 never flips.
// Multilabel (Uint8Array, N*L): each bit independently, with prob `rate`, is replaced by a
// random bit (symmetric: it changes with prob rate/2) or flipped (flip-to-other); asymmetric
// flips only 1 -> 0 (missed findings). Pairflip has no multilabel meaning and throws.
import { Rng } from '../../engine/rng.ts';

export type NoiseType = 'symmetric' | 'flip-to-other' | 'asymmetric' | 'pairflip';
export const NOISE_TYPES: readonly NoiseType[] = ['symmetric', 'flip-to-other', 'asymmetric', 'pairflip'];

/**
 * The random stream of each noise type. flip-to-other keeps the stream of the old 'symmetric'
 * (its code is unchanged), so the noisy labels of earlier runs are reproduced exactly.
 */
const STREAM: Record<NoiseType, string> = { symmetric: 'symmetric-uniform', 'flip-to-other': 'symmetric', asymmetric: 'asymmetric', pairflip: 'pairflip' };

export interface NoiseOptions {
  type: NoiseType;
  /** Flip probability in [0, 1]. */
  rate: number;
  seed: number;
  /** Asymmetric target per class (see file comment). */
  map?: number[];
  /** Flip exactly round(rate * flippable) samples instead of independent coin flips. */
  exact?: boolean;
}

export interface NoiseResult {
  labels: Int32Array;
  /** 1 where the label was changed. */
  flipped: Uint8Array;
  /** Fraction of samples whose label changed. */
  realisedRate: number;
  /** counts[clean][noisy]. */
  counts: number[][];
  /** Row-normalised counts (rows with no samples are identity rows). */
  transition: number[][];
}

export interface MultilabelNoiseResult {
  labels: Uint8Array;
  flipped: Uint8Array;
  /** Fraction of label bits changed. */
  realisedRate: number;
  perLabelRate: number[];
  /** counts[clean bit][noisy bit], pooled over labels. */
  counts: number[][];
  transition: number[][];
}

/** Default asymmetric target per class (see file comment). */
export function asymmetricMap(numClasses: number): number[] {
  return new Array<number>(numClasses).fill(0);
}

/** The transition matrix the options imply, T[clean][noisy] (expected, not realised). */
export function expectedTransition(numClasses: number, opts: Pick<NoiseOptions, 'type' | 'rate' | 'map'>): number[][] {
  const C = numClasses;
  const r = opts.rate;
  const T: number[][] = Array.from({ length: C }, (_, i) => Array.from({ length: C }, (_, j) => (i === j ? 1 : 0)));
  for (let c = 0; c < C; c++) {
    if (opts.type === 'flip-to-other') {
      if (C < 2) continue;
      for (let j = 0; j < C; j++) T[c][j] = j === c ? 1 - r : r / (C - 1);
    } else if (opts.type === 'symmetric') {
      for (let j = 0; j < C; j++) T[c][j] = (j === c ? 1 - r : 0) + r / C;
    } else {
      const t = opts.type === 'pairflip' ? (c + 1) % C : (opts.map ?? asymmetricMap(C))[c];
      if (t === c) continue;
      T[c][c] = 1 - r;
      T[c][t] = r;
    }
  }
  return T;
}

function rowNormalise(counts: number[][]): number[][] {
  return counts.map((row, i) => {
    const s = row.reduce((a, b) => a + b, 0);
    return s > 0 ? row.map((v) => v / s) : row.map((_, j) => (i === j ? 1 : 0));
  });
}

/** Which samples flip: independent coins, or exactly round(rate * |eligible|) of them. */
function chooseFlips(eligible: number[], rate: number, exact: boolean, rng: Rng): number[] {
  if (exact) {
    const k = Math.round(rate * eligible.length);
    const e = eligible.slice();
    // Partial Fisher-Yates: first k of a random permutation.
    for (let i = 0; i < k; i++) {
      const j = i + rng.int(e.length - i);
      const t = e[i];
      e[i] = e[j];
      e[j] = t;
    }
    return e.slice(0, k);
  }
  return eligible.filter(() => rng.next() < rate);
}

export function injectNoise(labels: Int32Array, numClasses: number, opts: NoiseOptions): NoiseResult;
export function injectNoise(labels: Uint8Array, numClasses: number, opts: NoiseOptions): MultilabelNoiseResult;
export function injectNoise(labels: Int32Array | Uint8Array, numClasses: number, opts: NoiseOptions): NoiseResult | MultilabelNoiseResult {
  if (!(opts.rate >= 0 && opts.rate <= 1)) throw new Error(`injectNoise: rate must be in [0,1], got ${opts.rate}`);
  if (!STREAM[opts.type]) throw new Error(`injectNoise: unknown noise type ${JSON.stringify(opts.type)} (${NOISE_TYPES.join(', ')})`);
  const rng = Rng.keyed('noise', opts.seed, STREAM[opts.type]);
  // symmetric: the chosen samples get a uniformly random value (their own included)
  const uniform = opts.type === 'symmetric';
  const C = numClasses;
  if (labels instanceof Uint8Array) {
    if (opts.type === 'pairflip') throw new Error('injectNoise: pairflip is not defined for multilabel labels (use symmetric or asymmetric)');
    const out = labels.slice();
    const flipped = new Uint8Array(labels.length);
    const eligible: number[] = [];
    for (let k = 0; k < labels.length; k++) if (opts.type !== 'asymmetric' || labels[k] === 1) eligible.push(k);
    for (const k of chooseFlips(eligible, opts.rate, !!opts.exact, rng)) {
      const v = uniform ? rng.int(2) : 1 - out[k];
      if (v === out[k]) continue;
      out[k] = v;
      flipped[k] = 1;
    }
    const counts = [
      [0, 0],
      [0, 0],
    ];
    const perLabel = new Array<number>(C).fill(0);
    let nFlip = 0;
    for (let k = 0; k < labels.length; k++) {
      counts[labels[k]][out[k]]++;
      if (flipped[k]) {
        nFlip++;
        perLabel[k % C]++;
      }
    }
    const n = labels.length / C;
    return {
      labels: out,
      flipped,
      realisedRate: labels.length ? nFlip / labels.length : 0,
      perLabelRate: perLabel.map((v) => (n ? v / n : 0)),
      counts,
      transition: rowNormalise(counts),
    };
  }
  const n = labels.length;
  const map = opts.type === 'asymmetric' ? opts.map ?? asymmetricMap(C) : undefined;
  if (map && map.length !== C) throw new Error(`injectNoise: map has ${map.length} entries for ${C} classes`);
  const target = (c: number): number => (opts.type === 'pairflip' ? (c + 1) % C : map ? map[c] : -1);
  const eligible: number[] = [];
  for (let i = 0; i < n; i++) {
    const c = labels[i];
    if (c < 0 || c >= C) throw new Error(`injectNoise: label ${c} at ${i} outside [0, ${C})`);
    if (uniform || opts.type === 'flip-to-other' ? C > 1 : target(c) !== c) eligible.push(i);
  }
  const out = labels.slice();
  const flipped = new Uint8Array(n);
  for (const i of chooseFlips(eligible, opts.rate, !!opts.exact, rng)) {
    const c = labels[i];
    let t: number;
    if (uniform) t = rng.int(C);
    else if (opts.type === 'flip-to-other') {
      t = rng.int(C - 1);
      if (t >= c) t++; // uniform over the other classes
    } else t = target(c);
    if (t === c) continue; // symmetric drew the true class: the label stays
    out[i] = t;
    flipped[i] = 1;
  }
  const counts = Array.from({ length: C }, () => new Array<number>(C).fill(0));
  let nFlip = 0;
  for (let i = 0; i < n; i++) {
    counts[labels[i]][out[i]]++;
    nFlip += flipped[i];
  }
  return { labels: out, flipped, realisedRate: n ? nFlip / n : 0, counts, transition: rowNormalise(counts) };
}

/** Pretty-print a transition matrix (for logs). */
export function formatTransition(T: number[][], classes?: string[]): string {
  const names = classes ?? T.map((_, i) => String(i));
  const w = Math.max(6, ...names.map((s) => Math.min(s.length, 12)));
  const cut = (s: string) => (s.length > 12 ? s.slice(0, 11) + '.' : s);
  const head = ' '.repeat(w + 1) + names.map((s) => cut(s).padStart(w)).join(' ');
  const rows = T.map((row, i) => cut(names[i]).padEnd(w) + ' ' + row.map((v) => v.toFixed(3).padStart(w)).join(' '));
  return [head, ...rows].join('\n');
}

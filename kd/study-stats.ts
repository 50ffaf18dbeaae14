// Paired statistics over seeds for the study's "RoS-KD vs each baseline" comparisons: the
// per-seed differences, a 95% percentile-bootstrap interval of their mean, and two exact
// distribution-free tests. With few seeds these are honest but weak: with 5 seeds the smallest
// two-sided p-value either test can give is 2/32 = 0.0625, so no 5-seed difference is
// "significant at 0.05", whatever its size. Pure (no node:*), tested against hand-computed values.
import { Rng } from '../engine/rng.ts';

/** Sample quantile with linear interpolation between order statistics (numpy's default, type 7). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return NaN;
  const h = (n - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, n - 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

export interface BootstrapCI {
  mean: number;
  lo: number;
  hi: number;
  level: number;
  resamples: number;
}

/**
 * Percentile bootstrap interval of the mean of `values`: `resamples` resamples of n values drawn
 * with replacement (seeded: the same values always give the same interval), the interval between
 * the (1 - level)/2 and (1 + level)/2 quantiles of the resampled means.
 */
export function bootstrapMeanCI(values: readonly number[], opts: { resamples?: number; level?: number; seed?: number } = {}): BootstrapCI {
  const B = opts.resamples ?? 10000;
  const level = opts.level ?? 0.95;
  const n = values.length;
  if (n === 0) return { mean: NaN, lo: NaN, hi: NaN, level, resamples: B };
  const mean = values.reduce((a, b) => a + b, 0) / n;
  const rng = Rng.keyed('bootstrap', opts.seed ?? 0, n);
  const means = new Float64Array(B);
  for (let b = 0; b < B; b++) {
    let s = 0;
    for (let k = 0; k < n; k++) s += values[rng.int(n)];
    means[b] = s / n;
  }
  means.sort();
  return { mean, lo: quantile(means, (1 - level) / 2), hi: quantile(means, (1 + level) / 2), level, resamples: B };
}

function binomCdfHalf(k: number, n: number): number {
  // P(X <= k), X ~ Binomial(n, 1/2)
  let c = 1;
  let s = 0;
  for (let i = 0; i <= k; i++) {
    s += c;
    c = (c * (n - i)) / (i + 1);
  }
  return s / 2 ** n;
}

/** Two-sided exact sign test of median 0: zeros dropped; p = min(1, 2 P(X <= min(n+, n-))). */
export function signTest(diffs: readonly number[]): { positive: number; negative: number; zero: number; p: number } {
  const positive = diffs.filter((d) => d > 0).length;
  const negative = diffs.filter((d) => d < 0).length;
  const zero = diffs.length - positive - negative;
  const n = positive + negative;
  const p = n === 0 ? 1 : Math.min(1, 2 * binomCdfHalf(Math.min(positive, negative), n));
  return { positive, negative, zero, p };
}

/** Ranks 1..n of values (ties get the average of their ranks). */
export function midranks(values: readonly number[]): number[] {
  const order = values.map((v, i) => [v, i] as const).sort((a, b) => a[0] - b[0]);
  const r = new Array<number>(values.length);
  for (let i = 0; i < order.length; ) {
    let j = i;
    while (j + 1 < order.length && order[j + 1][0] === order[i][0]) j++;
    for (let k = i; k <= j; k++) r[order[k][1]] = (i + j) / 2 + 1;
    i = j + 1;
  }
  return r;
}

/**
 * Two-sided Wilcoxon signed-rank test of median 0 (zeros dropped, Wilcoxon's convention; tied
 * |d| get mid-ranks). Exact for up to 20 non-zero differences (all 2^n sign patterns of the same
 * ranks, so ties are handled exactly too); normal approximation with tie correction beyond.
 */
export function wilcoxonSignedRank(diffs: readonly number[]): { n: number; wPlus: number; wMinus: number; p: number; exact: boolean } {
  const d = diffs.filter((x) => x !== 0 && Number.isFinite(x));
  const n = d.length;
  if (n === 0) return { n, wPlus: 0, wMinus: 0, p: 1, exact: true };
  const r = midranks(d.map(Math.abs));
  const wPlus = d.reduce((a, x, i) => a + (x > 0 ? r[i] : 0), 0);
  const total = (n * (n + 1)) / 2;
  const wMinus = total - wPlus;
  const eps = 1e-9;
  if (n <= 20) {
    let le = 0;
    let ge = 0;
    for (let mask = 0; mask < 1 << n; mask++) {
      let w = 0;
      for (let i = 0; i < n; i++) if (mask & (1 << i)) w += r[i];
      if (w <= wPlus + eps) le++;
      if (w >= wPlus - eps) ge++;
    }
    const N = 2 ** n;
    return { n, wPlus, wMinus, p: Math.min(1, (2 * Math.min(le, ge)) / N), exact: true };
  }
  const ties = new Map<number, number>();
  for (const v of r) ties.set(v, (ties.get(v) ?? 0) + 1);
  const tieTerm = [...ties.values()].reduce((a, t) => a + t ** 3 - t, 0) / 48;
  const sd = Math.sqrt((n * (n + 1) * (2 * n + 1)) / 24 - tieTerm);
  const z = (Math.abs(wPlus - total / 2) - 0.5) / sd; // continuity-corrected
  return { n, wPlus, wMinus, p: Math.min(1, 2 * (1 - normalCdf(Math.max(z, 0)))), exact: false };
}

/** Standard normal CDF (Abramowitz-Stegun 7.1.26 erf, |error| < 1.5e-7). */
export function normalCdf(z: number): number {
  const x = Math.abs(z) / Math.SQRT2;
  const t = 1 / (1 + 0.3275911 * x);
  const erf = 1 - ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t + 0.254829592) * t * Math.exp(-x * x);
  return z >= 0 ? (1 + erf) / 2 : (1 - erf) / 2;
}

export interface PairedComparison {
  /** seeds present in both, ascending */
  seeds: number[];
  /** a - b per seed */
  diffs: number[];
  mean: number;
  ci: BootstrapCI;
  sign: ReturnType<typeof signTest>;
  wilcoxon: ReturnType<typeof wilcoxonSignedRank>;
}

/** a - b paired by seed (seeds where either is missing or non-finite are left out). */
export function pairedComparison(a: ReadonlyMap<number, number>, b: ReadonlyMap<number, number>, opts: { resamples?: number; seed?: number } = {}): PairedComparison {
  const seeds = [...a.keys()].filter((s) => b.has(s) && Number.isFinite(a.get(s)!) && Number.isFinite(b.get(s)!)).sort((x, y) => x - y);
  const diffs = seeds.map((s) => a.get(s)! - b.get(s)!);
  const ci = bootstrapMeanCI(diffs, { resamples: opts.resamples ?? 10000, level: 0.95, seed: opts.seed ?? 0 });
  return { seeds, diffs, mean: ci.mean, ci, sign: signTest(diffs), wilcoxon: wilcoxonSignedRank(diffs) };
}

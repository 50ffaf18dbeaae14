// Seeded, stratified, group-aware splitting. All images of one patient/lesion
// land in the same split (otherwise near-duplicate views leak into test), and
// each stratum (class) is divided in the requested proportions as far as the
// group sizes allow: groups are placed greedily where they best reduce the
// relative deviation of every stratum's share (like stratified group k-fold).
import { Rng } from '../../engine/rng.ts';

/**
 * Split sample indices into len(fractions) parts.
 * @param strata  stratum (usually class) per sample
 * @param groups  group id per sample (patient / lesion); undefined = every sample its own group
 * @param fractions e.g. [0.7, 0.1, 0.2]; normalised to sum 1
 * @returns one sorted Int32Array of sample indices per part
 */
export function groupedStratifiedSplit(
  strata: ArrayLike<number>,
  groups: ArrayLike<string> | undefined,
  fractions: number[],
  seed: number,
): Int32Array[] {
  const n = strata.length;
  if (groups && groups.length !== n) throw new Error(`groupedStratifiedSplit: ${groups.length} groups for ${n} samples`);
  if (fractions.length < 1 || fractions.some((f) => !(f >= 0))) throw new Error(`groupedStratifiedSplit: bad fractions ${JSON.stringify(fractions)}`);
  const fsum = fractions.reduce((a, b) => a + b, 0);
  if (!(fsum > 0)) throw new Error('groupedStratifiedSplit: fractions sum to 0');
  const frac = fractions.map((f) => f / fsum);

  // Collect groups in first-appearance order (deterministic before shuffling).
  const members = new Map<string, number[]>();
  for (let i = 0; i < n; i++) {
    const g = groups ? groups[i] : `#${i}`;
    let m = members.get(g);
    if (!m) members.set(g, (m = []));
    m.push(i);
  }
  // Stratum counts per group and overall.
  const keys = [...new Set(Array.from(strata))].sort((a, b) => a - b);
  const slot = new Map(keys.map((k, j) => [k, j]));
  const S = keys.length;
  const total = new Float64Array(S);
  for (let i = 0; i < n; i++) total[slot.get(strata[i])!]++;
  const list = [...members.values()].map((m) => {
    const cnt = new Float64Array(S);
    for (const i of m) cnt[slot.get(strata[i])!]++;
    let rarest = Infinity;
    for (let j = 0; j < S; j++) if (cnt[j] > 0) rarest = Math.min(rarest, total[j]);
    return { m, cnt, rarest };
  });
  const rng = Rng.keyed('split', seed);
  rng.shuffle(list);
  // Groups holding rare strata first (while every part still has room for them), big groups
  // before small ones (small ones fine-tune the balance); random among equals (stable sort).
  list.sort((a, b) => a.rarest - b.rarest || b.m.length - a.m.length);
  const K = frac.length;
  const got = Array.from({ length: K }, () => new Float64Array(S));
  const parts: number[][] = frac.map(() => []);
  for (const g of list) {
    // Send the group where it most reduces sum_k,c ((share of stratum c in part k - f_k) / f_k)^2:
    // every stratum counts equally (rare classes too) and small parts are kept relatively exact.
    let bestK = -1;
    let best = Infinity;
    const start = rng.int(K);
    for (let t = 0; t < K; t++) {
      const k = (start + t) % K;
      if (frac[k] === 0) continue;
      let delta = 0;
      for (let j = 0; j < S; j++) {
        if (g.cnt[j] === 0) continue;
        const w = g.cnt[j] / total[j];
        delta += w * (2 * (got[k][j] / total[j] - frac[k]) + w);
      }
      delta /= frac[k] * frac[k];
      if (delta < best - 1e-15) {
        best = delta;
        bestK = k;
      }
    }
    for (let j = 0; j < S; j++) got[bestK][j] += g.cnt[j];
    for (const i of g.m) parts[bestK].push(i);
  }
  return parts.map((p) => Int32Array.from(p).sort());
}

/** Stratum per sample for multilabel data: the globally rarest positive label, or L for "no finding". */
export function multilabelStrata(labels: Uint8Array, n: number, L: number): Int32Array {
  const freq = new Array<number>(L).fill(0);
  for (let i = 0; i < n; i++) for (let c = 0; c < L; c++) freq[c] += labels[i * L + c];
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = L;
    for (let c = 0; c < L; c++) if (labels[i * L + c] && (best === L || freq[c] < freq[best])) best = c;
    out[i] = best;
  }
  return out;
}

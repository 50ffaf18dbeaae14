// Seeded, stratified, group-aware splitting. All images of one patient/lesion
// land in the same split (otherwise near-duplicate views leak into test), and
// each stratum (class) is divided in the requested proportions as far as the
// group sizes allow.
import { Rng } from './rng.ts';

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
  const total = fractions.reduce((a, b) => a + b, 0);
  if (!(total > 0)) throw new Error('groupedStratifiedSplit: fractions sum to 0');
  const frac = fractions.map((f) => f / total);

  // Collect groups in first-appearance order (deterministic before shuffling).
  const members = new Map<string, number[]>();
  for (let i = 0; i < n; i++) {
    const g = groups ? groups[i] : `#${i}`;
    let m = members.get(g);
    if (!m) members.set(g, (m = []));
    m.push(i);
  }
  // A group's stratum: its rarest stratum (keeps rare classes spread across splits).
  const stratumSize = new Map<number, number>();
  for (let i = 0; i < n; i++) stratumSize.set(strata[i], (stratumSize.get(strata[i]) ?? 0) + 1);
  const byStratum = new Map<number, number[][]>();
  for (const m of members.values()) {
    let best = strata[m[0]];
    for (const i of m) if ((stratumSize.get(strata[i]) ?? 0) < (stratumSize.get(best) ?? 0)) best = strata[i];
    let list = byStratum.get(best);
    if (!list) byStratum.set(best, (list = []));
    list.push(m);
  }
  const rng = new Rng('split', seed);
  const parts: number[][] = frac.map(() => []);
  const keys = [...byStratum.keys()].sort((a, b) => a - b);
  for (const key of keys) {
    const list = rng.shuffle(byStratum.get(key)!);
    // Larger groups first so the greedy fill can still balance with small ones.
    list.sort((a, b) => b.length - a.length);
    const size = list.reduce((a, m) => a + m.length, 0);
    const got = frac.map(() => 0);
    for (const m of list) {
      // Put the group where the deficit against the target is largest (ties: random).
      let bestK = -1;
      let bestDef = -Infinity;
      const start = rng.int(frac.length);
      for (let t = 0; t < frac.length; t++) {
        const k = (start + t) % frac.length;
        if (frac[k] === 0) continue;
        const def = frac[k] * size - got[k];
        if (def > bestDef + 1e-9) {
          bestDef = def;
          bestK = k;
        }
      }
      got[bestK] += m.length;
      for (const i of m) parts[bestK].push(i);
    }
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

// Our extension to RoS-KD (`--teacher-pool out-of-subset`): instead of one teacher per mini-batch
// drawn among all K, every SAMPLE gets a teacher drawn among those that did NOT train on it.
// A teacher memorises its own subset's noisy labels, so its output on those images repeats the
// noise; on images it never saw it does not. Where every teacher saw the sample (subset fraction
// near 1), the draw falls back to all teachers. Pure (no GPU, no node:*), so it is tested exactly.
import { Rng } from '../engine/rng.ts';
import { combineTeachers, drawWeighted } from './roskd.ts';

/** seen[t][i] = 1 when teacher t trained on training image i. */
export function subsetMembership(subsets: readonly Int32Array[], n: number): Uint8Array[] {
  return subsets.map((s) => {
    const m = new Uint8Array(n);
    for (const i of s) {
      if (i < 0 || i >= n) throw new RangeError(`teacher subset index ${i} outside the ${n} training images`);
      m[i] = 1;
    }
    return m;
  });
}


export interface PoolOptions {
  seed: number;
  /** seen[t][i] of subsetMembership, one row per teacher */
  seen: readonly Uint8Array[];
  /** draw weights per teacher (default uniform); a teacher of weight 0 is never drawn */
  probs?: readonly number[];
  /** teachers averaged per sample (default 1); fewer where fewer qualify */
  perSample?: number;
}

/**
 * The teachers of each sample of a batch (training-set indices idx) at (epoch, step): drawn among
 * the teachers that did not see the sample, or among all when none qualifies. Deterministic in
 * (seed, epoch, step, idx), so a resumed run replays the same draws.
 */
export function choosePerSample(idx: ArrayLike<number>, epoch: number, step: number, o: PoolOptions): number[][] {
  const K = o.seen.length;
  if (K < 1) throw new Error('teacher pool: no teacher');
  const probs = o.probs ?? new Array<number>(K).fill(1);
  if (probs.length !== K) throw new RangeError(`teacher pool: ${probs.length} probabilities for ${K} teachers`);
  const k = o.perSample ?? 1;
  if (!(k >= 1 && k <= K)) throw new RangeError(`teachers per sample must lie in [1, ${K}], got ${k}`);
  const rng = Rng.keyed('teacher-pool', o.seed, epoch, step);
  const out: number[][] = [];
  for (let b = 0; b < idx.length; b++) {
    const i = idx[b];
    let w = probs.map((p, t) => (o.seen[t][i] ? 0 : p));
    if (!w.some((v) => v > 0)) w = [...probs]; // every (usable) teacher saw it: any teacher
    out.push(drawWeighted(rng, w, k));
  }
  return out;
}

/**
 * Soft-target logits [B, C] when each sample has its own teachers: rows.get(t) holds teacher t's
 * logits for the whole batch ([B, C]); a sample with several teachers gets the average of their
 * softened probabilities (roskd.ts combineTeachers), one teacher its logits as is.
 */
export function combinePerSample(rows: ReadonlyMap<number, Float32Array>, choices: readonly number[][], C: number, T: number, multilabel: boolean): Float32Array {
  const B = choices.length;
  const out = new Float32Array(B * C);
  for (let b = 0; b < B; b++) {
    const parts = choices[b].map((t) => {
      const r = rows.get(t);
      if (!r || r.length !== B * C) throw new Error(`teacher pool: no ${B}x${C} logits of teacher ${t} for this batch`);
      return r.subarray(b * C, b * C + C);
    });
    out.set(combineTeachers(parts, 1, C, T, multilabel), b * C);
  }
  return out;
}

/** The teachers needed by a batch's choices (each once, ascending). */
export function teachersUsed(choices: readonly number[][]): number[] {
  return [...new Set(choices.flat())].sort((a, b) => a - b);
}

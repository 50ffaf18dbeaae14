// RoS-KD's own logic, free of the GPU so it can be tested exactly: teacher subsets, the
// stochastic teacher choice, the baselines' teacher combinations, and temporal smoothing of
// soft targets. Our reading of the paper (Jaiswal et al., ICDM 2022):
//  - K teachers, each trained on its own random subset (a fraction f of the noisy training set,
//    drawn independently per teacher, so subsets overlap and every teacher sees a different
//    slice of the noise);
//  - the student sees, for each mini-batch, the softened output of ONE teacher drawn uniformly
//    at random, combined with the noisy hard label by the usual KD loss
//    L = (1 - alpha) CE(z_s, y~) + alpha T^2 KL(softmax(z_t/T) || softmax(z_s/T));
//  - baselines with the same budget: ce (noisy labels only), kd (the single best teacher by
//    validation score), avgkd (the K teachers' softened probabilities averaged every batch).
// Soft targets are passed to the engine's fused KD loss as "equivalent logits" T log q (or
// T logit q for sigmoid outputs), whose softened distribution is exactly q, so averaging and
// smoothing need no special loss.
import { Rng } from '../engine/rng.ts';
import type { Method } from './config.ts';

// ---------------------------------------------------------------- subsets

export class EmptySubsetError extends Error {
  override name = 'EmptySubsetError';
}

/**
 * One random subset per teacher: round(fraction * n) distinct indices (sorted), drawn
 * independently (teacher i uses its own seeded stream), so subsets overlap. Throws
 * EmptySubsetError when a subset would be empty.
 */
export function drawSubsets(n: number, teachers: number, fraction: number, seed: number): Int32Array[] {
  if (!(fraction > 0 && fraction <= 1)) throw new RangeError(`--subset-fraction must lie in (0, 1], got ${fraction}`);
  const size = Math.round(fraction * n);
  if (size < 1)
    throw new EmptySubsetError(`--subset-fraction ${fraction} of ${n} training images gives each teacher an empty subset (round(${fraction} x ${n}) = 0); use a larger fraction or more data`);
  const out: Int32Array[] = [];
  for (let i = 0; i < teachers; i++) {
    const rng = Rng.keyed('teacher-subset', seed, i);
    // partial Fisher-Yates: the first `size` slots are a uniform random subset
    const p = new Int32Array(n);
    for (let k = 0; k < n; k++) p[k] = k;
    for (let k = 0; k < size; k++) {
      const j = k + rng.int(n - k);
      const t = p[k];
      p[k] = p[j];
      p[j] = t;
    }
    out.push(p.slice(0, size).sort());
  }
  return out;
}

export interface SubsetStats {
  sizes: number[];
  /** |S_i ∩ S_j| for every pair */
  pairOverlap: number[][];
  /** training images no teacher saw */
  unseen: number;
  /** images every teacher saw */
  seenByAll: number;
}

export function subsetStats(subsets: Int32Array[], n: number): SubsetStats {
  const count = new Uint16Array(n);
  for (const s of subsets) for (const i of s) count[i]++;
  const sets = subsets.map((s) => new Set(s));
  const pairOverlap = subsets.map((a, i) => subsets.map((_, j) => (i === j ? a.length : [...a].filter((v) => sets[j].has(v)).length)));
  let unseen = 0;
  let seenByAll = 0;
  for (let i = 0; i < n; i++) {
    if (count[i] === 0) unseen++;
    if (count[i] === subsets.length) seenByAll++;
  }
  return { sizes: subsets.map((s) => s.length), pairOverlap, unseen, seenByAll };
}

// ---------------------------------------------------------------- teacher choice

/** Draw probabilities over teachers: uniform, or proportional to validation scores. */
export function teacherProbabilities(weighting: 'uniform' | 'val', scores: number[]): number[] {
  const K = scores.length;
  if (weighting === 'uniform') return new Array(K).fill(1 / K);
  // Scores are "higher is better" (AUC, accuracy, F1, or -loss shifted to positive).
  const min = Math.min(...scores);
  const shifted = scores.map((s) => (Number.isFinite(s) ? s - Math.min(0, min) : 0));
  const sum = shifted.reduce((a, b) => a + b, 0);
  if (!(sum > 0)) return new Array(K).fill(1 / K);
  return shifted.map((s) => s / sum);
}

/** Index of the best teacher (highest score; ties: lowest index). */
export function bestTeacher(scores: number[]): number {
  let best = 0;
  for (let i = 1; i < scores.length; i++) if (scores[i] > scores[best]) best = i;
  return best;
}

/** k distinct indices drawn without replacement with probability proportional to w (w > 0 only). */
export function drawWeighted(rng: Rng, weights: readonly number[], k: number): number[] {
  const w = [...weights];
  const out: number[] = [];
  for (let n = 0; n < k; n++) {
    const total = w.reduce((a, b) => a + b, 0);
    if (!(total > 0)) break;
    let u = rng.next() * total;
    let pick = -1;
    for (let i = 0; i < w.length; i++) {
      if (w[i] <= 0) continue;
      pick = i;
      u -= w[i];
      if (u < 0) break;
    }
    out.push(pick);
    w[pick] = 0;
  }
  return out.sort((a, b) => a - b);
}

/**
 * The teachers a student sees at (epoch, step). Deterministic in (seed, method, epoch, step),
 * so a resumed run replays exactly the same draws.
 *  - ce: none; kd: the best teacher; avgkd: all of them;
 *  - roskd: k distinct teachers drawn from `probs` (k = teachersPerBatch, 1 in the paper).
 */
export class TeacherChooser {
  constructor(
    readonly method: Method,
    readonly K: number,
    readonly opts: { seed: number; probs?: number[]; perBatch?: number; best?: number },
  ) {
    if (method !== 'ce' && K < 1) throw new Error(`${method} needs at least one trained teacher`);
    const k = opts.perBatch ?? 1;
    if (method !== 'ce' && (k < 1 || k > K)) throw new RangeError(`teachers per batch must lie in [1, ${K}], got ${k}`);
    if (opts.probs && (opts.probs.length !== K || opts.probs.some((p) => !(p >= 0)))) throw new RangeError(`teacher probabilities must be ${K} non-negative numbers`);
  }

  choose(epoch: number, step: number): number[] {
    switch (this.method) {
      case 'ce':
        return [];
      case 'kd':
        return [this.opts.best ?? 0];
      case 'avgkd':
        return Array.from({ length: this.K }, (_, i) => i);
      case 'roskd': {
        const rng = Rng.keyed('teacher-choice', this.opts.seed, epoch, step);
        return drawWeighted(rng, this.opts.probs ?? new Array(this.K).fill(1), this.opts.perBatch ?? 1);
      }
    }
  }
}

// ---------------------------------------------------------------- soft targets

/** Softened probabilities of one row of logits: softmax(z/T) or, multi-label, sigmoid(z/T). */
function soften(z: Float32Array, off: number, C: number, T: number, multilabel: boolean, out: Float64Array): void {
  if (multilabel) {
    for (let c = 0; c < C; c++) out[c] = 1 / (1 + Math.exp(-z[off + c] / T));
    return;
  }
  let m = -Infinity;
  for (let c = 0; c < C; c++) m = Math.max(m, z[off + c] / T);
  let s = 0;
  for (let c = 0; c < C; c++) s += out[c] = Math.exp(z[off + c] / T - m);
  for (let c = 0; c < C; c++) out[c] /= s;
}

const P_MIN = 1e-7;

/** Logits whose softened (temperature T) distribution is q: T log q, or T logit q. */
function toLogits(q: Float64Array, C: number, T: number, multilabel: boolean, dst: Float32Array, off: number): void {
  for (let c = 0; c < C; c++) {
    const p = Math.min(Math.max(q[c], P_MIN), multilabel ? 1 - P_MIN : 1);
    dst[off + c] = multilabel ? T * Math.log(p / (1 - p)) : T * Math.log(p);
  }
}

/**
 * Soft-target logits for a batch: rows[t] holds the chosen teacher t's logits for the batch
 * ([B, C]). One teacher: its logits as is. Several: T log(mean_t softmax(z_t/T)) (sigmoid form
 * for multi-label), i.e. the average of the softened probabilities.
 */
export function combineTeachers(rows: Float32Array[], B: number, C: number, T: number, multilabel: boolean): Float32Array {
  if (rows.length === 0) throw new Error('combineTeachers: no teacher');
  for (const r of rows) if (r.length !== B * C) throw new Error(`combineTeachers: teacher rows have ${r.length} values, expected ${B}x${C}`);
  if (rows.length === 1) return rows[0];
  const out = new Float32Array(B * C);
  const q = new Float64Array(C);
  const p = new Float64Array(C);
  for (let b = 0; b < B; b++) {
    q.fill(0);
    for (const r of rows) {
      soften(r, b * C, C, T, multilabel, p);
      for (let c = 0; c < C; c++) q[c] += p[c] / rows.length;
    }
    toLogits(q, C, T, multilabel, out, b * C);
  }
  return out;
}

/**
 * Temporal smoothing of each training sample's soft target across epochs:
 * q_i <- beta q_i + (1 - beta) p_i (first visit: q_i = p_i), where p_i is the softened output of
 * the teacher(s) the sample met this time. State is a plain Float32Array (checkpointed).
 */
export class TargetSmoother {
  readonly q: Float32Array;
  readonly seen: Uint8Array;
  constructor(
    readonly n: number,
    readonly C: number,
    readonly beta: number,
    readonly T: number,
    readonly multilabel: boolean,
  ) {
    this.q = new Float32Array(n * C);
    this.seen = new Uint8Array(n);
  }

  /** Updates the samples `idx` with this step's target logits and returns smoothed target logits. */
  apply(idx: ArrayLike<number>, targetLogits: Float32Array): Float32Array {
    const { C, T, beta, multilabel } = this;
    const out = new Float32Array(idx.length * C);
    const p = new Float64Array(C);
    const q = new Float64Array(C);
    for (let b = 0; b < idx.length; b++) {
      const i = idx[b];
      soften(targetLogits, b * C, C, T, multilabel, p);
      for (let c = 0; c < C; c++) {
        q[c] = this.seen[i] ? beta * this.q[i * C + c] + (1 - beta) * p[c] : p[c];
        this.q[i * C + c] = q[c];
      }
      this.seen[i] = 1;
      toLogits(q, C, T, multilabel, out, b * C);
    }
    return out;
  }
}

/** Gathers rows idx of an [N, C] table into [B, C]. */
export function gatherRows(table: Float32Array, C: number, idx: ArrayLike<number>): Float32Array {
  const out = new Float32Array(idx.length * C);
  for (let b = 0; b < idx.length; b++) out.set(table.subarray(idx[b] * C, idx[b] * C + C), b * C);
  return out;
}

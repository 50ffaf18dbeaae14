// Calibration metrics on CPU (re-exported by metrics.ts, the one home of host-side metrics; kept in
// their own file so metrics.ts stays small). Inputs as in metrics.ts: probabilities [N*C] row-major,
// labels Int32Array [N] class ids or, for multi-label, Uint8Array [N*L] 0/1.
//
// ECE (expected calibration error, Guo et al. 2017), B equal-width bins (default 15):
//   single-label: confidence_i = max_c p_ic, correct_i = [arg-max_c p_ic == y_i];
//                 bin b holds the samples with confidence in (b/B, (b+1)/B] (0 goes to bin 0);
//                 ECE = sum_b (n_b / N) |mean correct - mean confidence|  over non-empty bins.
//   multi-label:  each label l is its own binary problem: confidence = max(p_il, 1 - p_il) (the
//                 probability of the decision taken at threshold 0.5), correct = [(p_il >= 0.5) == y_il];
//                 per-label ECE as above, and the headline ECE is their mean.
// Brier score:
//   single-label: mean over samples of sum_c (p_ic - [y_i == c])^2, in [0, 2] (Brier 1950; for a
//                 binary task this is twice scikit-learn's brier_score_loss of the positive class).
//   multi-label:  mean over samples of (p_il - y_il)^2 per label, and the mean over labels.

import type { Task } from './data/dataset.ts';

export interface CalibrationBin {
  /** bin edges (lo, hi] */
  lo: number;
  hi: number;
  n: number;
  /** mean confidence and accuracy of the bin's samples (NaN when empty) */
  confidence: number;
  accuracy: number;
}

export interface Calibration {
  ece: number;
  /** single-label: the bins of the headline ECE (a reliability diagram's data) */
  bins?: CalibrationBin[];
  /** multi-label: ECE of each label */
  perLabel?: number[];
}

/** Bin index of a confidence in [0, 1]: (b/B, (b+1)/B] -> b, and 0 -> 0. */
export function binOf(conf: number, B: number): number {
  return Math.min(B - 1, Math.max(0, Math.ceil(conf * B) - 1));
}

/** ECE of (confidence, correct) pairs over B equal-width bins, with the bins. */
export function eceOf(conf: ArrayLike<number>, correct: ArrayLike<number>, B = 15): { ece: number; bins: CalibrationBin[] } {
  if (!(Number.isInteger(B) && B >= 1)) throw new RangeError(`ece: bins must be a positive integer, got ${B}`);
  const n = conf.length;
  if (correct.length !== n) throw new RangeError(`ece: ${n} confidences but ${correct.length} outcomes`);
  const cnt = new Float64Array(B);
  const sc = new Float64Array(B);
  const sa = new Float64Array(B);
  for (let i = 0; i < n; i++) {
    const c = conf[i];
    if (!(c >= 0 && c <= 1)) throw new RangeError(`ece: confidence ${c} of sample ${i} is outside [0, 1]`);
    const b = binOf(c, B);
    cnt[b]++;
    sc[b] += c;
    sa[b] += correct[i] ? 1 : 0;
  }
  let ece = 0;
  const bins: CalibrationBin[] = [];
  for (let b = 0; b < B; b++) {
    bins.push({ lo: b / B, hi: (b + 1) / B, n: cnt[b], confidence: cnt[b] ? sc[b] / cnt[b] : NaN, accuracy: cnt[b] ? sa[b] / cnt[b] : NaN });
    if (cnt[b]) ece += (cnt[b] / n) * Math.abs(sa[b] / cnt[b] - sc[b] / cnt[b]);
  }
  return { ece: n ? ece : NaN, bins };
}

function checkShape(probs: ArrayLike<number>, labels: ArrayLike<number>, C: number, task: Task): number {
  const n = task === 'multilabel' ? labels.length / C : labels.length;
  if (!Number.isInteger(n) || probs.length !== n * C) throw new RangeError(`calibration: ${probs.length} probabilities for ${labels.length} labels of ${C} classes (${task})`);
  return n;
}

/** Expected calibration error (see the file comment for the definition). */
export function expectedCalibrationError(probs: ArrayLike<number>, labels: ArrayLike<number>, C: number, task: Task, bins = 15): Calibration {
  const n = checkShape(probs, labels, C, task);
  if (task === 'multilabel') {
    const perLabel: number[] = [];
    for (let l = 0; l < C; l++) {
      const conf = new Float64Array(n);
      const ok = new Uint8Array(n);
      for (let i = 0; i < n; i++) {
        const p = probs[i * C + l];
        conf[i] = Math.max(p, 1 - p);
        ok[i] = (p >= 0.5 ? 1 : 0) === (labels[i * C + l] ? 1 : 0) ? 1 : 0;
      }
      perLabel.push(eceOf(conf, ok, bins).ece);
    }
    return { ece: perLabel.reduce((a, b) => a + b, 0) / C, perLabel };
  }
  const conf = new Float64Array(n);
  const ok = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < C; c++) if (probs[i * C + c] > probs[i * C + best]) best = c;
    conf[i] = probs[i * C + best];
    ok[i] = best === labels[i] ? 1 : 0;
  }
  return eceOf(conf, ok, bins);
}

/** Brier score (see the file comment); multi-label also gives each label's. */
export function brierScore(probs: ArrayLike<number>, labels: ArrayLike<number>, C: number, task: Task): { brier: number; perLabel?: number[] } {
  const n = checkShape(probs, labels, C, task);
  if (task === 'multilabel') {
    const perLabel = new Array<number>(C).fill(0);
    for (let i = 0; i < n; i++) for (let l = 0; l < C; l++) perLabel[l] += (probs[i * C + l] - (labels[i * C + l] ? 1 : 0)) ** 2 / n;
    return { brier: perLabel.reduce((a, b) => a + b, 0) / C, perLabel };
  }
  let s = 0;
  for (let i = 0; i < n; i++) for (let c = 0; c < C; c++) s += (probs[i * C + c] - (labels[i] === c ? 1 : 0)) ** 2;
  return { brier: n ? s / n : NaN };
}

// Classification metrics on CPU. Inputs are probabilities as a row-major
// Float32Array [N*C] (a Float32Array [N] of positive-class probabilities is
// also accepted for binary tasks) and labels: Int32Array [N] class ids, or
// Uint8Array [N*L] 0/1 for multilabel.
//
// Conventions (chosen to match scikit-learn defaults, so numbers are comparable):
//  - macro-F1 (single-label) averages over the classes present in the labels
//    or the predictions; a 0/0 precision or recall counts as 0.
//  - multilabel macro-F1 averages over all L labels (0/0 -> 0).
//  - AUC is the Mann-Whitney statistic with tied scores given average ranks;
//    binary AUC is that of the positive class (index 1); multiclass AUC is the
//    macro one-vs-rest mean over classes that have both positives and negatives
//    (NaN if none has). A class's AUC is NaN when it is undefined.

import type { Task } from './data/dataset.ts';

// ECE and the Brier score live in calibration.ts (definitions there); this file is their entry point.
export * from './calibration.ts';

export interface ClassRow {
  name: string;
  precision: number;
  recall: number;
  f1: number;
  /** Number of true samples of the class (positives, for multilabel). */
  support: number;
  /** One-vs-rest AUC (NaN when the class has no positives or no negatives). */
  auc: number;
}

export interface Metrics {
  accuracy: number;
  macroF1: number;
  /** Macro AUC (see file comment). */
  auc: number;
  perClass: ClassRow[];
  /** confusion[true][pred] (single-label only). */
  confusion?: number[][];
}

/** Expand [N] positive-class probabilities to [N*2]; pass [N*C] through. */
function asMatrix(probs: ArrayLike<number>, n: number, C: number): ArrayLike<number> {
  if (probs.length === n * C) return probs;
  if (C === 2 && probs.length === n) {
    const out = new Float32Array(2 * n);
    for (let i = 0; i < n; i++) {
      out[2 * i] = 1 - probs[i];
      out[2 * i + 1] = probs[i];
    }
    return out;
  }
  throw new Error(`metrics: probs has ${probs.length} values, expected N*C = ${n}*${C}${C === 2 ? ` or N = ${n}` : ''}`);
}

function checkLabels(labels: ArrayLike<number>, C: number): void {
  for (let i = 0; i < labels.length; i++)
    if (!(labels[i] >= 0 && labels[i] < C && Number.isInteger(labels[i]))) throw new Error(`metrics: label ${labels[i]} at ${i} outside [0, ${C})`);
}

export function argmax(probs: ArrayLike<number>, n: number, C: number): Int32Array {
  const p = asMatrix(probs, n, C);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bv = p[i * C];
    for (let c = 1; c < C; c++) if (p[i * C + c] > bv) (bv = p[i * C + c]), (best = c);
    out[i] = best;
  }
  return out;
}

/** Row-wise softmax of logits [N*C]. */
export function softmax(logits: ArrayLike<number>, n: number, C: number): Float32Array {
  const out = new Float32Array(n * C);
  for (let i = 0; i < n; i++) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, logits[i * C + c]);
    let s = 0;
    for (let c = 0; c < C; c++) s += out[i * C + c] = Math.exp(logits[i * C + c] - m);
    for (let c = 0; c < C; c++) out[i * C + c] /= s;
  }
  return out;
}

export function sigmoid(logits: ArrayLike<number>): Float32Array {
  return Float32Array.from(logits, (z) => 1 / (1 + Math.exp(-z)));
}

export function confusionMatrix(probs: ArrayLike<number>, labels: ArrayLike<number>, C: number): number[][] {
  const n = labels.length;
  checkLabels(labels, C);
  const pred = argmax(probs, n, C);
  const m = Array.from({ length: C }, () => new Array<number>(C).fill(0));
  for (let i = 0; i < n; i++) m[labels[i]][pred[i]]++;
  return m;
}

export function accuracy(probs: ArrayLike<number>, labels: ArrayLike<number>, C: number): number {
  const n = labels.length;
  if (n === 0) return NaN;
  checkLabels(labels, C);
  const pred = argmax(probs, n, C);
  let ok = 0;
  for (let i = 0; i < n; i++) ok += pred[i] === labels[i] ? 1 : 0;
  return ok / n;
}

function prf(tp: number, fp: number, fn: number): { precision: number; recall: number; f1: number } {
  const precision = tp + fp > 0 ? tp / (tp + fp) : 0;
  const recall = tp + fn > 0 ? tp / (tp + fn) : 0;
  const f1 = 2 * tp + fp + fn > 0 ? (2 * tp) / (2 * tp + fp + fn) : 0;
  return { precision, recall, f1 };
}

export function macroF1(probs: ArrayLike<number>, labels: ArrayLike<number>, C: number): number {
  const m = confusionMatrix(probs, labels, C);
  let sum = 0;
  let k = 0;
  for (let c = 0; c < C; c++) {
    let fp = 0;
    let fn = 0;
    for (let j = 0; j < C; j++) {
      if (j !== c) {
        fp += m[j][c];
        fn += m[c][j];
      }
    }
    const tp = m[c][c];
    if (tp + fp + fn === 0) continue; // class absent from labels and predictions
    sum += prf(tp, fp, fn).f1;
    k++;
  }
  return k ? sum / k : NaN;
}

/**
 * Binary ROC AUC by the rank (Mann-Whitney U) formula, ties averaged.
 * `positive[i]` truthy marks positives. NaN if there are no positives or no negatives.
 */
export function binaryAuc(scores: ArrayLike<number>, positive: ArrayLike<number | boolean>): number {
  const n = scores.length;
  if (positive.length !== n) throw new Error(`binaryAuc: ${n} scores but ${positive.length} labels`);
  const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => scores[a] - scores[b]);
  let rankSumPos = 0;
  let nPos = 0;
  for (let i = 0; i < n; ) {
    let j = i;
    while (j + 1 < n && scores[order[j + 1]] === scores[order[i]]) j++;
    const avgRank = (i + j) / 2 + 1; // 1-based average rank of the tie block
    for (let k = i; k <= j; k++)
      if (positive[order[k]]) {
        rankSumPos += avgRank;
        nPos++;
      }
    i = j + 1;
  }
  const nNeg = n - nPos;
  if (nPos === 0 || nNeg === 0) return NaN;
  return (rankSumPos - (nPos * (nPos + 1)) / 2) / (nPos * nNeg);
}

function classAuc(p: ArrayLike<number>, labels: ArrayLike<number>, C: number, c: number): number {
  const n = labels.length;
  const s = new Float64Array(n);
  const pos = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    s[i] = p[i * C + c];
    pos[i] = labels[i] === c ? 1 : 0;
  }
  return binaryAuc(s, pos);
}

function meanDefined(xs: number[]): number {
  const d = xs.filter((v) => !Number.isNaN(v));
  return d.length ? d.reduce((a, b) => a + b, 0) / d.length : NaN;
}

/** Binary: AUC of class 1. Multiclass: macro one-vs-rest AUC over classes where it is defined. */
export function aucOneVsRest(probs: ArrayLike<number>, labels: ArrayLike<number>, C: number): number {
  checkLabels(labels, C);
  const p = asMatrix(probs, labels.length, C);
  if (C === 2) return classAuc(p, labels, C, 1);
  const aucs: number[] = [];
  for (let c = 0; c < C; c++) aucs.push(classAuc(p, labels, C, c));
  return meanDefined(aucs);
}

export function perClassTable(probs: ArrayLike<number>, labels: ArrayLike<number>, C: number, names?: string[]): ClassRow[] {
  const m = confusionMatrix(probs, labels, C);
  const p = asMatrix(probs, labels.length, C);
  const rows: ClassRow[] = [];
  for (let c = 0; c < C; c++) {
    let fp = 0;
    let fn = 0;
    for (let j = 0; j < C; j++)
      if (j !== c) {
        fp += m[j][c];
        fn += m[c][j];
      }
    const tp = m[c][c];
    rows.push({ name: names?.[c] ?? String(c), ...prf(tp, fp, fn), support: tp + fn, auc: classAuc(p, labels, C, c) });
  }
  return rows;
}

export interface MultilabelMetrics extends Metrics {
  /** Fraction of samples whose whole label vector is right at the threshold. */
  exactMatch: number;
}

/** Multilabel metrics: mean per-label accuracy at `threshold`, macro-F1 over labels, macro per-label AUC. */
export function multilabelMetrics(probs: ArrayLike<number>, labels: Uint8Array, L: number, threshold = 0.5, names?: string[]): MultilabelMetrics {
  const n = labels.length / L;
  if (!Number.isInteger(n)) throw new Error(`multilabelMetrics: ${labels.length} labels is not a multiple of L = ${L}`);
  if (probs.length !== labels.length) throw new Error(`multilabelMetrics: probs has ${probs.length} values, labels ${labels.length}`);
  const perClass: ClassRow[] = [];
  let accSum = 0;
  for (let c = 0; c < L; c++) {
    let tp = 0;
    let fp = 0;
    let fn = 0;
    let tn = 0;
    const s = new Float64Array(n);
    const pos = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const y = labels[i * L + c];
      const pr = probs[i * L + c] >= threshold ? 1 : 0;
      if (y && pr) tp++;
      else if (!y && pr) fp++;
      else if (y && !pr) fn++;
      else tn++;
      s[i] = probs[i * L + c];
      pos[i] = y;
    }
    accSum += n ? (tp + tn) / n : NaN;
    perClass.push({ name: names?.[c] ?? String(c), ...prf(tp, fp, fn), support: tp + fn, auc: binaryAuc(s, pos) });
  }
  let exact = 0;
  for (let i = 0; i < n; i++) {
    let ok = true;
    for (let c = 0; c < L && ok; c++) ok = (probs[i * L + c] >= threshold ? 1 : 0) === labels[i * L + c];
    if (ok) exact++;
  }
  return {
    accuracy: accSum / L,
    macroF1: perClass.reduce((a, r) => a + r.f1, 0) / L,
    auc: meanDefined(perClass.map((r) => r.auc)),
    perClass,
    exactMatch: n ? exact / n : NaN,
  };
}

/** All headline metrics for a task. */
export function evaluate(probs: ArrayLike<number>, labels: Int32Array | Uint8Array, C: number, task: Task, names?: string[]): Metrics {
  if (task === 'multilabel') {
    if (!(labels instanceof Uint8Array)) throw new Error('evaluate: multilabel needs Uint8Array labels [N*L]');
    return multilabelMetrics(probs, labels, C, 0.5, names);
  }
  return {
    accuracy: accuracy(probs, labels, C),
    macroF1: macroF1(probs, labels, C),
    auc: aucOneVsRest(probs, labels, C),
    perClass: perClassTable(probs, labels, C, names),
    confusion: confusionMatrix(probs, labels, C),
  };
}

/** Fixed-width text table of per-class rows (for logs). */
export function formatClassTable(rows: ClassRow[]): string {
  const w = Math.min(24, Math.max(5, ...rows.map((r) => r.name.length)));
  const f = (v: number) => (Number.isNaN(v) ? '-' : v.toFixed(3)).padStart(10);
  const head = 'class'.padEnd(w) + ['precision', 'recall', 'f1', 'auc', 'support'].map((s) => s.padStart(10)).join('');
  const lines = rows.map((r) => (r.name.length > w ? r.name.slice(0, w - 1) + '.' : r.name).padEnd(w) + f(r.precision) + f(r.recall) + f(r.f1) + f(r.auc) + String(r.support).padStart(10));
  return [head, ...lines].join('\n');
}

// ---------------------------------------------------------------- from logits (the one host-side home)

/** Probabilities from logits [N*C]: softmax rows, or sigmoid elements for multi-label. */
export function probabilities(logits: Float32Array, C: number, multilabel: boolean): Float32Array {
  return multilabel ? sigmoid(logits) : softmax(logits, logits.length / C, C);
}

/**
 * Per-sample loss on the given labels: cross-entropy (labels: class ids [N]) or, for multi-label,
 * BCE with logits averaged over the C labels (labels: 0/1 targets [N*C]). Stable log-sum-exp.
 */
export function sampleLosses(logits: ArrayLike<number>, n: number, C: number, labels: ArrayLike<number>, multilabel: boolean): Float64Array {
  const loss = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * C;
    if (multilabel) {
      let s = 0;
      for (let c = 0; c < C; c++) {
        const x = logits[o + c];
        s += Math.max(x, 0) - x * labels[o + c] + Math.log1p(Math.exp(-Math.abs(x)));
      }
      loss[i] = s / C;
    } else {
      let m = -Infinity;
      for (let c = 0; c < C; c++) m = Math.max(m, logits[o + c]);
      let z = 0;
      for (let c = 0; c < C; c++) z += Math.exp(logits[o + c] - m);
      loss[i] = m + Math.log(z) - logits[o + labels[i]];
    }
  }
  return loss;
}

/** Mean of sampleLosses (0 samples: 0). */
export function meanLoss(logits: ArrayLike<number>, labels: ArrayLike<number>, C: number, multilabel: boolean): number {
  const n = logits.length / C;
  let s = 0;
  for (const v of sampleLosses(logits, n, C, labels, multilabel)) s += v;
  return s / Math.max(1, n);
}

/**
 * Per-sample misclassification (1 = wrong): single-label, the arg-max class beats the true one
 * strictly; multi-label, any label's sign (logit >= 0) disagrees with its 0/1 target.
 */
export function misclassified(logits: ArrayLike<number>, n: number, C: number, labels: ArrayLike<number>, multilabel: boolean): Uint8Array {
  const wrong = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const o = i * C;
    if (multilabel) {
      for (let c = 0; c < C; c++) if ((logits[o + c] >= 0 ? 1 : 0) !== (labels[o + c] >= 0.5 ? 1 : 0)) wrong[i] = 1;
    } else {
      const y = labels[i];
      let m = -Infinity;
      let arg = 0;
      for (let c = 0; c < C; c++) if (logits[o + c] > m) (m = logits[o + c]), (arg = c);
      wrong[i] = arg !== y && logits[o + arg] > logits[o + y] ? 1 : 0;
    }
  }
  return wrong;
}

// ---------------------------------------------------------------- scores of a model

export interface ClassScores {
  name: string;
  support: number;
  precision: number;
  recall: number;
  f1: number;
  auc: number;
}

/** What training and the report keep of a model's evaluation on a split. */
export interface Scores {
  acc: number;
  f1: number;
  auc: number;
  /** mean clean-label cross-entropy (BCE for multi-label) */
  loss: number;
  n: number;
  perClass: ClassScores[];
  /** confusion[true][pred] (single-label) */
  confusion?: number[][];
}

export type SelectBy = 'auc' | 'acc' | 'f1' | 'loss';

/** Accuracy, macro-F1, macro AUC (one-vs-rest; per label for multi-label) and a per-class table. */
export function scoreProbs(probs: Float32Array, labels: Int32Array | Uint8Array, task: Task, C: number, classes: readonly string[]): Scores {
  const m = evaluate(probs, labels, C, task, [...classes]);
  return {
    acc: m.accuracy, f1: m.macroF1, auc: m.auc, loss: NaN, n: probs.length / C,
    perClass: m.perClass.map((r) => ({ name: r.name, support: r.support, precision: r.precision, recall: r.recall, f1: r.f1, auc: r.auc })),
    confusion: m.confusion,
  };
}

/** scoreProbs of the logits, with the mean clean-label loss filled in. */
export function scoreLogits(logits: Float32Array, labels: Int32Array | Uint8Array, task: Task, C: number, classes: readonly string[]): Scores {
  const s = scoreProbs(probabilities(logits, C, task === 'multilabel'), labels, task, C, classes);
  s.loss = meanLoss(logits, labels, C, task === 'multilabel');
  return s;
}

/** The number that ranks epochs and teachers (higher is better); accuracy when AUC is undefined. */
export function scoreOf(s: Scores, by: SelectBy): number {
  const v = by === 'loss' ? -s.loss : by === 'auc' ? s.auc : by === 'acc' ? s.acc : s.f1;
  if (Number.isFinite(v)) return v;
  return Number.isFinite(s.acc) ? s.acc : -Infinity; // AUC undefined (one class in val)
}

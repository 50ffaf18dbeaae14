// Scoring a model's probabilities against labels (what `kd/predict.ts --labels` prints and writes):
// accuracy, macro-F1, AUC, ECE, Brier score, a per-class table and the confusion matrix. Pure
// (no node: imports), so a browser page can use it; the file side is evaluate-labels.ts.
import type { Task } from './data/dataset.ts';
import { brierScore, evaluate, expectedCalibrationError, type CalibrationBin, type ClassRow } from './metrics.ts';

export interface Evaluation {
  task: Task;
  classes: string[];
  n: number;
  /** single-label: fraction right; multi-label: mean per-label accuracy at threshold 0.5 */
  accuracy: number;
  macroF1: number;
  /** macro one-vs-rest AUC (binary: of the positive class; multi-label: mean per-label) */
  auc: number;
  /** 15 equal-width bins (calibration.ts); multi-label: mean of the per-label ECEs */
  ece: number;
  eceBins?: CalibrationBin[];
  brier: number;
  /** per class: precision, recall, F1, support, AUC; multi-label rows also carry the label's ECE and Brier */
  perClass: (ClassRow & { ece?: number; brier?: number })[];
  /** confusion[true][predicted] (single-label) */
  confusion?: number[][];
  /** multi-label: fraction of samples with every label right */
  exactMatch?: number;
}

/** All evaluation numbers of probabilities [N*C] against labels (class ids [N], or 0/1 [N*C] for multi-label). */
export function evaluateProbs(probs: Float32Array, labels: Int32Array | Uint8Array, task: Task, classes: readonly string[], bins = 15): Evaluation {
  const C = classes.length;
  const m = evaluate(probs, labels, C, task, [...classes]);
  const cal = expectedCalibrationError(probs, labels, C, task, bins);
  const br = brierScore(probs, labels, C, task);
  const perClass = m.perClass.map((r, k) => (task === 'multilabel' ? { ...r, ece: cal.perLabel![k], brier: br.perLabel![k] } : { ...r }));
  return {
    task, classes: [...classes], n: probs.length / C,
    accuracy: m.accuracy, macroF1: m.macroF1, auc: m.auc, ece: cal.ece, eceBins: cal.bins, brier: br.brier,
    perClass, confusion: m.confusion,
    ...('exactMatch' in m ? { exactMatch: (m as { exactMatch: number }).exactMatch } : {}),
  };
}

const num = (v: number, d = 4) => (Number.isFinite(v) ? v.toFixed(d) : '-');

/** The text report: headline numbers, per-class table, confusion matrix. */
export function formatEvaluation(e: Evaluation, title = ''): string {
  const out: string[] = [];
  if (title) out.push(title);
  out.push(`${e.n} samples, ${e.task}, classes: ${e.classes.join(', ')}`);
  out.push(`accuracy ${num(e.accuracy)}  macro-F1 ${num(e.macroF1)}  AUC ${num(e.auc)}  ECE ${num(e.ece)}  Brier ${num(e.brier)}${e.exactMatch !== undefined ? `  exact-match ${num(e.exactMatch)}` : ''}`);
  out.push('');
  const ml = e.task === 'multilabel';
  const cols = ['precision', 'recall', 'f1', 'auc', ...(ml ? ['ece', 'brier'] : []), 'support'];
  const w = Math.min(24, Math.max(5, ...e.perClass.map((r) => r.name.length)));
  out.push('class'.padEnd(w) + cols.map((c) => c.padStart(10)).join(''));
  for (const r of e.perClass) {
    const vals = [r.precision, r.recall, r.f1, r.auc, ...(ml ? [r.ece!, r.brier!] : [])].map((v) => num(v, 3).padStart(10));
    out.push((r.name.length > w ? r.name.slice(0, w - 1) + '.' : r.name).padEnd(w) + vals.join('') + String(r.support).padStart(10));
  }
  if (e.confusion) {
    out.push('', 'confusion matrix (rows: true class, columns: predicted)');
    const cw = Math.max(6, ...e.classes.map((c) => Math.min(12, c.length)), ...e.confusion.flat().map((v) => String(v).length)) + 2;
    const name = (c: string) => (c.length > 12 ? c.slice(0, 11) + '.' : c);
    out.push(''.padEnd(w) + e.classes.map((c) => name(c).padStart(cw)).join(''));
    e.confusion.forEach((row, k) => out.push(name(e.classes[k]).padEnd(w) + row.map((v) => String(v).padStart(cw)).join('')));
  }
  return out.join('\n');
}

/** NaN and infinities become null in JSON (JSON.stringify would write null anyway; this keeps it explicit). */
export function evaluationJson(e: Evaluation, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ ...extra, ...e }, (_, v) => (typeof v === 'number' && !Number.isFinite(v) ? null : v), 2);
}

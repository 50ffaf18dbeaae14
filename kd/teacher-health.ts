// Teacher health: is a trained teacher better than a constant predictor? A teacher that predicts
// the majority class everywhere still ranks well enough to be drawn by RoS-KD and averaged by
// avgKD, and then teaches the student to predict the majority class too. The rule, on the
// teacher's best-epoch validation scores (the labels of --val-labels):
//   single-label, collapsed when ANY of
//     - one class is predicted for >= 99% of the validation images (from the confusion matrix);
//     - macro AUC <= 0.5 + 0.02 (chance; skipped where AUC is undefined);
//     - macro-F1 <= the majority-class predictor's macro-F1 + 0.01, where predicting the most
//       frequent class (a fraction p of the labels) everywhere scores 2p / (1 + p) on that class
//       and 0 on the other classes present, i.e. 2p / ((1 + p) Cpresent) (kd/metrics.ts's convention);
//   multi-label: macro AUC <= 0.5 + 0.02.
// Flagged teachers are named in the log and the report; --drop-collapsed-teachers leaves them out
// of kd / avgkd / roskd.
import type { Scores } from './metrics.ts';

export const HEALTH_RULE = {
  /** a class predicted for at least this fraction of val images */
  oneClassFraction: 0.99,
  /** AUC at or below 0.5 + this */
  aucMargin: 0.02,
  /** macro-F1 at or below the majority-class predictor's + this */
  f1Margin: 0.01,
};

export interface TeacherHealth {
  collapsed: boolean;
  /** why (empty when healthy) */
  reasons: string[];
  /** fraction of val images given the most predicted class (single-label) */
  topPredictedFraction: number | null;
  /** macro-F1 of always predicting the majority class (single-label) */
  majorityF1: number | null;
  auc: number;
  f1: number;
}

/** The macro-F1 of predicting the most frequent class for every sample, from class counts. */
export function majorityClassF1(counts: readonly number[]): number {
  const n = counts.reduce((a, b) => a + b, 0);
  const present = counts.filter((c) => c > 0).length;
  if (n === 0 || present === 0) return NaN;
  const p = Math.max(...counts) / n;
  return (2 * p) / (1 + p) / present;
}

/** Health of a model from its validation scores (single-label needs the confusion matrix). */
export function teacherHealth(val: Scores, multilabel: boolean): TeacherHealth {
  const reasons: string[] = [];
  const r = HEALTH_RULE;
  if (Number.isFinite(val.auc) && val.auc <= 0.5 + r.aucMargin) reasons.push(`val AUC ${val.auc.toFixed(3)} <= ${(0.5 + r.aucMargin).toFixed(2)} (chance)`);
  let top: number | null = null;
  let maj: number | null = null;
  if (!multilabel) {
    const cm = val.confusion;
    const counts = cm ? cm.map((row) => row.reduce((a, b) => a + b, 0)) : val.perClass.map((c) => c.support);
    maj = majorityClassF1(counts);
    if (cm && cm.length) {
      const n = counts.reduce((a, b) => a + b, 0);
      const predicted = cm[0].map((_, j) => cm.reduce((a, row) => a + row[j], 0));
      top = n > 0 ? Math.max(...predicted) / n : null;
      if (top !== null && top >= r.oneClassFraction) reasons.push(`one class predicted for ${(100 * top).toFixed(1)}% of val images (>= ${100 * r.oneClassFraction}%)`);
    }
    if (Number.isFinite(val.f1) && Number.isFinite(maj) && val.f1 <= maj + r.f1Margin)
      reasons.push(`val macro-F1 ${(100 * val.f1).toFixed(1)}% <= majority-class ${(100 * maj).toFixed(1)}% + ${100 * r.f1Margin} points`);
  }
  return { collapsed: reasons.length > 0, reasons, topPredictedFraction: top, majorityF1: maj, auc: val.auc, f1: val.f1 };
}

/**
 * The teachers kd / avgkd / roskd use: all, or (drop) the healthy ones. Throws when dropping
 * would leave none, naming every teacher's reasons.
 */
export function usableTeachers(health: readonly TeacherHealth[], drop: boolean): number[] {
  const all = health.map((_, i) => i);
  if (!drop) return all;
  const ok = all.filter((i) => !health[i].collapsed);
  if (ok.length === 0)
    throw new Error(`--drop-collapsed-teachers: all ${health.length} teachers are collapsed (${health.map((h, i) => `teacher-${i}: ${h.reasons.join('; ')}`).join(' | ')}); nothing left to distil from: train better teachers (more epochs, another learning rate or width) or run without the option`);
  return ok;
}

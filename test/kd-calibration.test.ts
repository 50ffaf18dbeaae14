// ECE and Brier score (kd/calibration.ts, through kd/metrics.ts) against values computed by hand,
// and evaluateProbs (kd/evaluation.ts) on the same fixture.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { binOf, brierScore, eceOf, expectedCalibrationError } from '../kd/metrics.ts';
import { evaluateProbs, formatEvaluation } from '../kd/evaluation.ts';

const close = (got: number, want: number, what: string, tol = 1e-12) => assert.ok(Math.abs(got - want) <= tol, `${what}: got ${got}, want ${want}`);

// 4 samples, 3 classes; max-probabilities 0.72 (right), 0.55 (wrong), 0.83 (right), 0.62 (wrong),
// each in its own 1/15-wide bin (10, 8, 12, 9), away from the bin edges.
const P = Float32Array.from([0.72, 0.18, 0.1, 0.2, 0.55, 0.25, 0.07, 0.1, 0.83, 0.62, 0.3, 0.08]);
const Y = Int32Array.from([0, 2, 2, 1]);
const f = (v: number) => Math.fround(v); // the fixture is float32

test('bins: (b/B, (b+1)/B], 0 in the first, 1 in the last', () => {
  assert.is(binOf(0, 15), 0);
  assert.is(binOf(1, 15), 14);
  assert.is(binOf(0.5, 2), 0);
  assert.is(binOf(0.5000001, 2), 1);
  assert.is(binOf(0.72, 15), 10);
  assert.is(binOf(0.55, 15), 8);
});

test('ECE single-label: separate bins give the mean |correct - confidence|; one bin the |mean gap|', () => {
  const want15 = (Math.abs(1 - f(0.72)) + Math.abs(0 - f(0.55)) + Math.abs(1 - f(0.83)) + Math.abs(0 - f(0.62))) / 4; // 0.405
  const e = expectedCalibrationError(P, Y, 3, 'multiclass');
  close(e.ece, want15, 'ECE, 15 bins', 1e-7);
  close(e.ece, 0.405, 'ECE ~ 0.405', 1e-6);
  assert.is(e.bins!.length, 15);
  assert.equal(e.bins!.map((b) => b.n), [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 1, 0, 0]);
  // two bins: every confidence is in (0.5, 1]: accuracy 2/4, mean confidence 0.68
  close(expectedCalibrationError(P, Y, 3, 'multiclass', 2).ece, Math.abs(0.5 - (f(0.72) + f(0.55) + f(0.83) + f(0.62)) / 4), 'ECE, 2 bins', 1e-7);
  close(expectedCalibrationError(P, Y, 3, 'multiclass', 2).ece, 0.18, 'ECE, 2 bins ~ 0.18', 1e-6);
  // perfectly calibrated: confidence 0.75 and 3 of 4 right
  close(eceOf([0.75, 0.75, 0.75, 0.75], [1, 1, 1, 0]).ece, 0, 'calibrated');
  assert.throws(() => eceOf([1.5], [1]), /confidence 1\.5 of sample 0 is outside \[0, 1\]/);
  assert.throws(() => expectedCalibrationError(P, Y, 4, 'multiclass'), /12 probabilities for 4 labels of 4 classes/);
});

test('Brier single-label: mean over samples of the squared distance to the one-hot label', () => {
  // rows: .0784+.0324+.01, .04+.3025+.5625, .0049+.01+.0289, .3844+.49+.0064 -> 1.9504 / 4
  close(brierScore(P, Y, 3, 'multiclass').brier, 0.4876, 'Brier', 1e-6);
  // binary: twice scikit-learn's brier_score_loss ((0.9-1)^2 + (0.2-0)^2) / 2 = 0.025
  close(brierScore(Float32Array.from([0.1, 0.9, 0.8, 0.2]), Int32Array.from([1, 0]), 2, 'binary').brier, 0.05, 'binary Brier', 1e-6);
});

test('ECE and Brier multi-label: per label (decision confidence max(p, 1-p)), then the mean', () => {
  const p = Float32Array.from([0.9, 0.3, 0.35, 0.8]);
  const y = Uint8Array.from([1, 0, 1, 1]);
  // label 0: conf .9 right, conf .65 wrong -> (.1 + .65) / 2; label 1: conf .7 right, .8 right -> (.3 + .2) / 2
  const e = expectedCalibrationError(p, y, 2, 'multilabel');
  close(e.perLabel![0], 0.375, 'label 0 ECE', 1e-6);
  close(e.perLabel![1], 0.25, 'label 1 ECE', 1e-6);
  close(e.ece, 0.3125, 'mean ECE', 1e-6);
  const b = brierScore(p, y, 2, 'multilabel');
  close(b.perLabel![0], (0.01 + 0.4225) / 2, 'label 0 Brier', 1e-6);
  close(b.perLabel![1], (0.09 + 0.04) / 2, 'label 1 Brier', 1e-6);
  close(b.brier, 0.140625, 'mean Brier', 1e-6);
});

test('evaluateProbs: every number of the fixture, and the text report', () => {
  const e = evaluateProbs(P, Y, 'multiclass', ['a', 'b', 'c']);
  assert.is(e.n, 4);
  close(e.accuracy, 0.5, 'accuracy');
  assert.equal(e.confusion, [[1, 0, 0], [1, 0, 0], [0, 1, 1]]);
  // a: tp 1 fp 1 fn 0 -> f1 2/3; b: tp 0 -> 0; c: tp 1 fp 0 fn 1 -> 2/3
  close(e.perClass[0].f1, 2 / 3, 'f1 a');
  close(e.perClass[2].precision, 1, 'precision c');
  close(e.perClass[2].recall, 0.5, 'recall c');
  close(e.macroF1, 4 / 9, 'macro-F1');
  assert.equal(e.perClass.map((r) => r.support), [1, 1, 2]);
  // AUC of a: positives {0.72}, negatives {0.2, 0.07, 0.62} -> 1; of b: {0.3} vs {0.18, 0.55, 0.1} -> 2/3;
  // of c: {0.25, 0.83} vs {0.1, 0.08} -> 1
  close(e.auc, (1 + 2 / 3 + 1) / 3, 'macro AUC', 1e-12);
  close(e.ece, 0.405, 'ECE', 1e-6);
  close(e.brier, 0.4876, 'Brier', 1e-6);
  const text = formatEvaluation(e, 'title');
  assert.match(text, /accuracy 0\.5000  macro-F1 0\.4444  AUC 0\.8889  ECE 0\.4050  Brier 0\.4876/);
  assert.match(text, /confusion matrix \(rows: true class, columns: predicted\)/);
  assert.match(text, /\nc\s+0\s+1\s+1(\n|$)/);
});

test.run();

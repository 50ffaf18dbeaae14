// Metrics against hand-computed values (ties, empty classes, binary/multiclass/multilabel).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  accuracy, macroF1, aucOneVsRest, binaryAuc, perClassTable, confusionMatrix, multilabelMetrics,
  evaluate, argmax, softmax, sigmoid, formatClassTable,
} from '../kd/metrics.ts';

const close = (a: number, b: number, eps = 1e-9) => assert.ok(Math.abs(a - b) < eps, `${a} != ${b}`);

// 4 samples, 3 classes (see the comments for the hand computation).
const P = Float32Array.from([
  0.7, 0.2, 0.1, // y=0, pred 0
  0.2, 0.5, 0.3, // y=1, pred 1
  0.3, 0.3, 0.4, // y=2, pred 2
  0.5, 0.3, 0.2, // y=1, pred 0
]);
const Y = Int32Array.from([0, 1, 2, 1]);

test('binary AUC: Mann-Whitney with tied ranks averaged', () => {
  close(binaryAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75);
  // Ties between a positive and negatives count 1/2: (0.5 + 0.5 + 1 + 1) / 4.
  close(binaryAuc([0.5, 0.5, 0.5, 0.9], [0, 1, 0, 1]), 0.75);
  close(binaryAuc([0.3, 0.3, 0.3, 0.3], [0, 1, 0, 1]), 0.5);
  close(binaryAuc([0.9, 0.8, 0.1], [0, 0, 1]), 0);
  assert.ok(Number.isNaN(binaryAuc([0.1, 0.2], [1, 1])));
  assert.ok(Number.isNaN(binaryAuc([], [])));
  // Larger random check against the O(n^2) pair count.
  let s = 7;
  const rnd = () => ((s = (s * 1103515245 + 12345) >>> 0) % 20) / 20; // coarse values: many ties
  const sc = Array.from({ length: 300 }, rnd);
  const y = sc.map((v, i) => (v + ((i * 37) % 11) / 20 > 0.7 ? 1 : 0));
  let num = 0;
  let den = 0;
  for (let i = 0; i < sc.length; i++)
    for (let j = 0; j < sc.length; j++)
      if (y[i] === 1 && y[j] === 0) {
        den++;
        num += sc[i] > sc[j] ? 1 : sc[i] === sc[j] ? 0.5 : 0;
      }
  close(binaryAuc(sc, y), num / den, 1e-12);
});

test('multiclass: accuracy, confusion, macro-F1, macro one-vs-rest AUC', () => {
  close(accuracy(P, Y, 3), 0.75);
  assert.equal(confusionMatrix(P, Y, 3), [
    [1, 0, 0],
    [1, 1, 0],
    [0, 0, 1],
  ]);
  // F1: class 0 = 2/3 (tp1 fp1), class 1 = 2/3 (tp1 fn1), class 2 = 1.
  close(macroF1(P, Y, 3), (2 / 3 + 2 / 3 + 1) / 3);
  // AUC: class 0 = 1, class 1 = 3.5/4 (one tie at 0.3), class 2 = 1.
  close(aucOneVsRest(P, Y, 3), (1 + 0.875 + 1) / 3);
  const rows = perClassTable(P, Y, 3, ['a', 'b', 'c']);
  assert.equal(rows.map((r) => r.name), ['a', 'b', 'c']);
  assert.equal(rows.map((r) => r.support), [1, 2, 1]);
  close(rows[0].precision, 0.5);
  close(rows[0].recall, 1);
  close(rows[1].precision, 1);
  close(rows[1].recall, 0.5);
  close(rows[1].auc, 0.875);
  assert.match(formatClassTable(rows), /^class\s+precision\s+recall\s+f1\s+auc\s+support\na\s+0\.500\s+1\.000\s+0\.667\s+1\.000\s+1\n/);
  assert.equal(Array.from(argmax(P, 4, 3)), [0, 1, 2, 0]);
});

test('macro-F1 with empty classes: absent everywhere is ignored, predicted-only counts as 0', () => {
  // Same data with a 4th class that never occurs: unchanged.
  const P4 = new Float32Array(16);
  for (let i = 0; i < 4; i++) P4.set(P.subarray(i * 3, i * 3 + 3), i * 4);
  close(macroF1(P4, Y, 4), (2 / 3 + 2 / 3 + 1) / 3);
  const rows = perClassTable(P4, Y, 4);
  assert.equal([rows[3].support, rows[3].precision, rows[3].recall, rows[3].f1], [0, 0, 0, 0]);
  assert.ok(Number.isNaN(rows[3].auc));
  // AUC macro skips the undefined class.
  close(aucOneVsRest(P4, Y, 4), (1 + 0.875 + 1) / 3);
  // labels [0,0,1,1], predictions [0,2,1,1]: F1 = (2/3 + 1 + 0) / 3 (as scikit-learn).
  const onehot = (ks: number[]) => Float32Array.from(ks.flatMap((k) => [0, 1, 2].map((c) => (c === k ? 0.9 : 0.05))));
  close(macroF1(onehot([0, 2, 1, 1]), Int32Array.from([0, 0, 1, 1]), 3), (2 / 3 + 1) / 3);
});

test('binary: AUC of the positive class; [N] probabilities accepted', () => {
  const p1 = Float32Array.from([0.1, 0.6, 0.35, 0.8]);
  const y = Int32Array.from([0, 0, 1, 1]);
  const p2 = Float32Array.from(Array.from(p1).flatMap((v) => [1 - v, v]));
  close(aucOneVsRest(p2, y, 2), 0.75);
  close(aucOneVsRest(p1, y, 2), 0.75);
  close(accuracy(p1, y, 2), 0.5); // preds [0,1,0,1]
  const m = evaluate(p2, y, 2, 'binary', ['neg', 'pos']);
  close(m.accuracy, 0.5);
  close(m.auc, 0.75);
  close(m.macroF1, 0.5);
  assert.equal(m.confusion, [
    [1, 1],
    [1, 1],
  ]);
  assert.is(m.perClass[1].name, 'pos');
});

test('multilabel: mean per-label accuracy at 0.5, macro-F1 over labels, macro AUC over defined labels', () => {
  const probs = Float32Array.from([0.9, 0.2, 0.05, 0.4, 0.6, 0.1, 0.7, 0.1, 0.2]);
  const labels = Uint8Array.from([1, 0, 0, 1, 1, 0, 0, 0, 0]);
  const m = multilabelMetrics(probs, labels, 3, 0.5, ['x', 'y', 'z']);
  // label x: preds [1,0,1] vs [1,1,0] -> acc 1/3, F1 0.5, AUC 0.5; label y: perfect; label z: no positives.
  close(m.perClass[0].f1, 0.5);
  close(m.perClass[0].auc, 0.5);
  close(m.perClass[1].auc, 1);
  assert.ok(Number.isNaN(m.perClass[2].auc));
  close(m.accuracy, (1 / 3 + 1 + 1) / 3);
  close(m.macroF1, (0.5 + 1 + 0) / 3);
  close(m.auc, 0.75);
  close(m.exactMatch, 1 / 3);
  const e = evaluate(probs, labels, 3, 'multilabel');
  close(e.auc, 0.75);
  assert.throws(() => evaluate(probs, Int32Array.from([0, 1, 2]), 3, 'multilabel'), /Uint8Array/);
});

test('helpers and input errors', () => {
  const s = softmax([0, 0, Math.log(2), 1000, 0, 0], 2, 3);
  close(s[2], 0.5);
  close(s[3], 1);
  close(sigmoid([0])[0], 0.5);
  assert.throws(() => accuracy(P, Int32Array.from([0, 1, 3, 1]), 3), /label 3 at 2 outside \[0, 3\)/);
  assert.throws(() => accuracy(P.subarray(0, 10), Y, 3), /probs has 10 values, expected N\*C = 4\*3/);
  assert.throws(() => multilabelMetrics(new Float32Array(5), new Uint8Array(6), 3), /probs has 5 values, labels 6/);
  assert.ok(Number.isNaN(accuracy(new Float32Array(0), new Int32Array(0), 3)));
});

test.run();

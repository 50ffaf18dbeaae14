// The study's paired statistics (kd/study-stats.ts) against hand-computed values, the
// out-of-subset teacher pool (kd/teacher-pool.ts) and the teacher-health rule (kd/teacher-health.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bootstrapMeanCI, midranks, pairedComparison, quantile, signTest, wilcoxonSignedRank } from '../kd/study-stats.ts';
import { choosePerSample, combinePerSample, subsetMembership, teachersUsed } from '../kd/teacher-pool.ts';
import { drawSubsets, combineTeachers } from '../kd/roskd.ts';
import { majorityClassF1, teacherHealth, usableTeachers } from '../kd/teacher-health.ts';
import type { Scores } from '../kd/metrics.ts';
import { Rng } from '../engine/rng.ts';

const close = (a: number, b: number, tol = 1e-12) => assert.ok(Math.abs(a - b) <= tol, `${a} vs ${b}`);

// ---------------------------------------------------------------- statistics

test('quantile: linear interpolation between order statistics (numpy default)', () => {
  close(quantile([1, 2, 3, 4], 0.5), 2.5);
  close(quantile([10, 20], 0.25), 12.5);
  close(quantile([5], 0.9), 5);
});

test('bootstrap: constant differences give a zero-width interval at that value', () => {
  const ci = bootstrapMeanCI([0.013, 0.013, 0.013, 0.013, 0.013]);
  close(ci.mean, 0.013, 1e-15);
  close(ci.lo, 0.013, 1e-15);
  close(ci.hi, 0.013, 1e-15);
  assert.is(ci.resamples, 10000);
});

test('bootstrap: known discrete cases (hand-computed resampling distributions)', () => {
  // {-1, +1}: resampled means are -1, 0, +1 with probabilities 1/4, 1/2, 1/4 -> the 2.5% and 97.5% quantiles are -1 and +1
  const a = bootstrapMeanCI([-1, 1], { seed: 3 });
  assert.is(a.lo, -1);
  assert.is(a.hi, 1);
  close(a.mean, 0);
  // {0,0,0,0,1}: mean = K/5 with K ~ Bin(5, 0.2): P(K=0) = 0.328 > 0.025 -> lo = 0;
  // P(K<=2) = 0.942 < 0.975 < P(K<=3) = 0.993 -> hi = 3/5
  const b = bootstrapMeanCI([0, 0, 0, 0, 1], { seed: 1 });
  assert.is(b.lo, 0);
  close(b.hi, 0.6, 1e-12);
  // a continuous check: the interval of n normal values covers their mean and is about 2 x 1.96 sd/sqrt(n) wide
  const rng = new Rng(9);
  const v = Array.from({ length: 400 }, () => rng.normal());
  const c = bootstrapMeanCI(v, { seed: 2 });
  const m = v.reduce((x, y) => x + y, 0) / v.length;
  const sd = Math.sqrt(v.reduce((x, y) => x + (y - m) ** 2, 0) / v.length);
  assert.ok(c.lo < m && m < c.hi);
  const w = (c.hi - c.lo) / ((2 * 1.96 * sd) / Math.sqrt(v.length));
  assert.ok(w > 0.9 && w < 1.1, `width ratio ${w}`);
  // seeded: the same values give the same interval
  assert.equal(bootstrapMeanCI([0.1, -0.3, 0.2], { seed: 4 }), bootstrapMeanCI([0.1, -0.3, 0.2], { seed: 4 }));
});

test('sign test: exact binomial p-values (hand-computed)', () => {
  assert.equal(signTest([1, 2, 3, 4, 5]), { positive: 5, negative: 0, zero: 0, p: 2 / 32 });
  close(signTest([1, 2, 3, -1, 5]).p, (2 * (1 + 5)) / 32);
  close(signTest([1, -1, 0, 2]).p, 1); // n = 3 (zero dropped), min = 1: 2 (1 + 3)/8 = 1
  assert.is(signTest([0, 0]).p, 1);
  close(signTest([1, 1, 1, 1, 1, 1, 1, 1, 1, 1]).p, 2 / 1024);
});

test('Wilcoxon signed-rank: exact p-values (hand-computed), ties by mid-ranks, zeros dropped', () => {
  assert.equal(midranks([3, 1, 3, 2]), [3.5, 1, 3.5, 2]);
  const all = wilcoxonSignedRank([0.5, 0.1, 0.3, 0.2, 0.4]);
  assert.is(all.wPlus, 15);
  close(all.p, 2 / 32);
  assert.ok(all.exact);
  // W- = 2: subsets of ranks {1..5} with sum <= 2 are {}, {1}, {2}: P = 3/32, two-sided 6/32
  const one = wilcoxonSignedRank([1, -2, 3, 4, 5]);
  assert.is(one.wMinus, 2);
  close(one.p, 6 / 32);
  // |d| = 1,1,1,2 -> mid-ranks 2,2,2,4; W+ = 8 (signs + + - +): P(W+ >= 8) = 4/16, two-sided 0.5
  const tied = wilcoxonSignedRank([1, 1, -1, 2, 0]);
  assert.is(tied.n, 4);
  assert.is(tied.wPlus, 8);
  close(tied.p, 0.5);
  assert.is(wilcoxonSignedRank([0, 0]).p, 1);
  // large n: the normal approximation is close to the exact value at n = 20
  const d = Array.from({ length: 20 }, (_, i) => (i % 3 === 0 ? -(i + 1) : i + 1));
  const exact = wilcoxonSignedRank(d).p;
  const approx = wilcoxonSignedRank([...d, 21]).p; // n = 21: approximate
  assert.ok(!wilcoxonSignedRank([...d, 21]).exact && exact > 0 && approx > 0 && Math.abs(Math.log(approx / exact)) < 1.5, `${exact} ${approx}`);
});

test('paired comparison: pairs by seed, skips missing seeds', () => {
  const a = new Map([[0, 0.8], [1, 0.7], [2, 0.9], [3, 0.5]]);
  const b = new Map([[0, 0.75], [1, 0.72], [2, 0.85], [4, 0.1]]);
  const c = pairedComparison(a, b);
  assert.equal(c.seeds, [0, 1, 2]);
  c.diffs.forEach((d, i) => close(d, [0.05, -0.02, 0.05][i], 1e-12));
  close(c.mean, 0.08 / 3, 1e-12);
  assert.ok(c.ci.lo <= c.mean && c.mean <= c.ci.hi);
});

// ---------------------------------------------------------------- out-of-subset pool

test('teacher pool: no sample is distilled from a teacher that trained on it, unless every teacher did', () => {
  const n = 500;
  const K = 3;
  const subsets = drawSubsets(n, K, 0.7, 4);
  const seen = subsetMembership(subsets, n);
  const counts = [0, 0, 0];
  let fallback = 0;
  for (let step = 0; step < 40; step++) {
    const idx = Int32Array.from({ length: 32 }, (_, b) => (step * 37 + b * 13) % n);
    const ch = choosePerSample(idx, 2, step, { seed: 7, seen });
    assert.is(ch.length, 32);
    ch.forEach((ts, b) => {
      assert.is(ts.length, 1);
      const i = idx[b];
      const free = [0, 1, 2].filter((t) => !seen[t][i]);
      if (free.length) assert.ok(free.includes(ts[0]), `sample ${i} got teacher ${ts[0]} which trained on it (free: ${free})`);
      else fallback++;
      counts[ts[0]]++;
    });
    // deterministic in (seed, epoch, step, idx): a resume replays it
    assert.equal(choosePerSample(idx, 2, step, { seed: 7, seen }), ch);
  }
  assert.ok(fallback > 0, 'with f = 0.7 and K = 3 about a third of the samples were seen by all teachers');
  for (const c of counts) assert.ok(c > 200, `every teacher drawn: ${counts}`);
  assert.not.equal(choosePerSample(Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 1, 0, { seed: 7, seen }), choosePerSample(Int32Array.from([1, 2, 3, 4, 5, 6, 7, 8]), 1, 0, { seed: 8, seen }));
});

test('teacher pool: exact eligibility on a hand-made case; k per sample; weights; combining', () => {
  // teacher 0 saw {0,1}, teacher 1 saw {1,2}, teacher 2 saw {1,3}; nobody saw 4
  const seen = subsetMembership([Int32Array.from([0, 1]), Int32Array.from([1, 2]), Int32Array.from([1, 3])], 5);
  for (let step = 0; step < 50; step++) {
    const ch = choosePerSample([0, 1, 2, 3, 4], 1, step, { seed: 1, seen });
    assert.ok([1, 2].includes(ch[0][0]));
    assert.ok([0, 1, 2].includes(ch[1][0])); // seen by all: any
    assert.ok([0, 2].includes(ch[2][0]));
    assert.ok([0, 1].includes(ch[3][0]));
    const two = choosePerSample([0, 4], 1, step, { seed: 1, seen, perSample: 2 });
    assert.equal(two[0], [1, 2]);
    assert.is(two[1].length, 2);
    // a teacher of weight 0 is never drawn where another qualifies
    assert.equal(choosePerSample([0], 1, step, { seed: 1, seen, probs: [1, 0, 1] })[0], [2]);
  }
  const rows = new Map([[0, Float32Array.from([1, 0, 0, 1])], [2, Float32Array.from([3, -1, 2, 2])]]);
  const z = combinePerSample(rows, [[0], [0, 2]], 2, 2, false);
  assert.equal(Array.from(z.subarray(0, 2)), [1, 0]);
  const want = combineTeachers([Float32Array.from([0, 1]), Float32Array.from([2, 2])], 1, 2, 2, false);
  assert.equal(Array.from(z.subarray(2)), Array.from(want));
  assert.equal(teachersUsed([[2], [0, 2], [0]]), [0, 2]);
  assert.throws(() => combinePerSample(rows, [[1]], 2, 2, false), /no 1x2 logits of teacher 1/);
});

// ---------------------------------------------------------------- teacher health

function scoresOf(confusion: number[][], auc: number, f1: number): Scores {
  return { acc: 0, f1, auc, loss: 0, n: 0, confusion, perClass: confusion.map((r, i) => ({ name: String(i), support: r.reduce((a, b) => a + b, 0), precision: 0, recall: 0, f1: 0, auc: 0 })) };
}

test('teacher health: majority-class macro-F1; the three rules; dropping', () => {
  // 3:1 classes: the majority predictor has p = 0.75, F1 = 1.5/1.75 on that class and 0 on the other
  close(majorityClassF1([75, 25]), 1.5 / 1.75 / 2);
  close(majorityClassF1([50, 30, 20, 0]), 1 / 1.5 / 3);
  // a constant predictor: every rule fires
  const constant = teacherHealth(scoresOf([[75, 0], [25, 0]], 0.5, 1.5 / 1.75 / 2), false);
  assert.ok(constant.collapsed);
  assert.is(constant.reasons.length, 3);
  close(constant.topPredictedFraction!, 1);
  // a decent model: none fires
  const good = teacherHealth(scoresOf([[70, 5], [5, 20]], 0.93, 0.866), false);
  assert.not.ok(good.collapsed);
  close(good.topPredictedFraction!, 0.75);
  // AUC alone at chance (0.51 <= 0.52) flags; 0.53 does not
  assert.ok(teacherHealth(scoresOf([[40, 35], [10, 15]], 0.51, 0.5), false).collapsed);
  assert.not.ok(teacherHealth(scoresOf([[40, 35], [10, 15]], 0.53, 0.5), false).collapsed);
  // 99% one class flags even with an AUC above chance
  const h = teacherHealth(scoresOf([[75, 0], [24, 1]], 0.8, 0.5), false);
  assert.ok(h.collapsed && /one class predicted for 99\.0%/.test(h.reasons.join()));
  // multi-label: the AUC rule only
  assert.not.ok(teacherHealth({ ...scoresOf([], 0.7, 0), confusion: undefined }, true).collapsed);
  assert.equal(usableTeachers([constant, good, constant], false), [0, 1, 2]);
  assert.equal(usableTeachers([constant, good, constant], true), [1]);
  assert.throws(() => usableTeachers([constant, constant], true), /all 2 teachers are collapsed/);
});

test.run();

// Label noise statistics and augmentation.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { injectNoise, expectedTransition, asymmetricMap, formatTransition } from '../kd/data/noise.ts';
import { augmentInto, drawAugment, defaultAugment } from '../kd/data/augment.ts';
import { Rng } from '../engine/rng.ts';

function throwsMatching(fn: () => unknown, re: RegExp): void {
  try {
    fn();
  } catch (e) {
    assert.match((e as Error).message, re);
    return;
  }
  assert.unreachable(`expected an error matching ${re}`);
}

/** |observed - p| within k binomial standard deviations. */
function near(observed: number, p: number, n: number, k = 4.5): boolean {
  return Math.abs(observed - p) <= k * Math.sqrt((p * (1 - p)) / n) + 1e-12;
}

function balanced(n: number, C: number): Int32Array {
  return Int32Array.from({ length: n }, (_, i) => i % C);
}

// ---------------------------------------------------------------- noise

test('noise: flip-to-other flips at the rate, uniformly to OTHER classes', () => {
  const n = 40000;
  const C = 4;
  const y = balanced(n, C);
  const r = injectNoise(y, C, { type: 'flip-to-other', rate: 0.3, seed: 1 });
  assert.ok(near(r.realisedRate, 0.3, n), `realised ${r.realisedRate}`);
  assert.is(r.flipped.reduce((a, b) => a + b, 0), Math.round(r.realisedRate * n));
  for (let i = 0; i < n; i++) assert.is(r.flipped[i] === 1, r.labels[i] !== y[i]);
  const nc = n / C;
  for (let c = 0; c < C; c++) {
    assert.is(r.counts[c].reduce((a, b) => a + b, 0), nc);
    assert.ok(near(r.transition[c][c], 0.7, nc), `diag ${r.transition[c][c]}`);
    for (let j = 0; j < C; j++) if (j !== c) assert.ok(near(r.transition[c][j], 0.1, nc), `T[${c}][${j}] = ${r.transition[c][j]}`);
  }
  // Deterministic per seed; the input is not modified.
  assert.equal(Array.from(injectNoise(y, C, { type: 'flip-to-other', rate: 0.3, seed: 1 }).labels), Array.from(r.labels));
  assert.not.equal(Array.from(injectNoise(y, C, { type: 'flip-to-other', rate: 0.3, seed: 2 }).labels), Array.from(r.labels));
  assert.equal(Array.from(y.subarray(0, 8)), [0, 1, 2, 3, 0, 1, 2, 3]);
  // Binary flip-to-other = plain flip; rate 0 and 1 are exact.
  const b = injectNoise(balanced(1000, 2), 2, { type: 'flip-to-other', rate: 1, seed: 0 });
  assert.equal(Array.from(b.labels.subarray(0, 4)), [1, 0, 1, 0]);
  assert.is(injectNoise(y, C, { type: 'flip-to-other', rate: 0, seed: 0 }).realisedRate, 0);
});

test('noise: pairflip c -> c+1 mod C; asymmetric default (c>0 -> 0) and custom maps', () => {
  const n = 30000;
  const C = 3;
  const y = balanced(n, C);
  const p = injectNoise(y, C, { type: 'pairflip', rate: 0.2, seed: 3 });
  for (let i = 0; i < n; i++) if (p.labels[i] !== y[i]) assert.is(p.labels[i], (y[i] + 1) % C);
  assert.ok(near(p.realisedRate, 0.2, n));
  for (let c = 0; c < C; c++) assert.ok(near(p.transition[c][(c + 1) % C], 0.2, n / C));

  // Binary asymmetric: only positives flip (1 -> 0).
  const yb = balanced(20000, 2);
  const a = injectNoise(yb, 2, { type: 'asymmetric', rate: 0.4, seed: 4 });
  assert.is(a.counts[0][1], 0);
  assert.ok(near(a.transition[1][0], 0.4, 10000));
  assert.ok(near(a.realisedRate, 0.2, 20000));
  assert.equal(asymmetricMap(4), [0, 0, 0, 0]);
  const am = injectNoise(balanced(40000, 4), 4, { type: 'asymmetric', rate: 0.25, seed: 5 });
  assert.equal(am.counts[0].slice(1), [0, 0, 0]);
  for (let c = 1; c < 4; c++) assert.ok(near(am.transition[c][0], 0.25, 10000));
  const custom = injectNoise(balanced(40000, 4), 4, { type: 'asymmetric', rate: 0.5, seed: 6, map: [1, 0, 3, 2] });
  assert.ok(near(custom.transition[2][3], 0.5, 10000) && custom.counts[2][0] === 0 && custom.counts[2][1] === 0);
  // The expected matrices.
  assert.equal(expectedTransition(3, { type: 'pairflip', rate: 0.2 }), [
    [0.8, 0.2, 0],
    [0, 0.8, 0.2],
    [0.2, 0, 0.8],
  ]);
  assert.equal(expectedTransition(2, { type: 'asymmetric', rate: 0.3 }), [
    [1, 0],
    [0.3, 0.7],
  ]);
  assert.ok(Math.abs(expectedTransition(4, { type: 'flip-to-other', rate: 0.3 })[1][2] - 0.1) < 1e-12);
  assert.match(formatTransition(p.transition, ['a', 'b', 'c']), /^\s+a\s+b\s+c\na\s+0\.[78]\d\d\s+0\.[12]\d\d\s+0\.000\n/);
});

test('noise: exact mode flips exactly round(rate * eligible); bad inputs', () => {
  const y = balanced(1001, 3);
  const e = injectNoise(y, 3, { type: 'flip-to-other', rate: 0.37, seed: 7, exact: true });
  assert.is(e.flipped.reduce((a, b) => a + b, 0), Math.round(0.37 * 1001));
  const yb = balanced(1000, 2);
  const ea = injectNoise(yb, 2, { type: 'asymmetric', rate: 0.1, seed: 7, exact: true });
  assert.is(ea.counts[1][0], 50);
  throwsMatching(() => injectNoise(y, 3, { type: 'flip-to-other', rate: 1.5, seed: 0 }), /rate must be in \[0,1\]/);
  throwsMatching(() => injectNoise(Int32Array.from([0, 5]), 3, { type: 'flip-to-other', rate: 0.1, seed: 0 }), /label 5 at 1 outside \[0, 3\)/);
  throwsMatching(() => injectNoise(y, 3, { type: 'asymmetric', rate: 0.1, seed: 0, map: [0, 1] }), /map has 2 entries for 3 classes/);
});

test('noise: multilabel flip-to-other flips each bit independently; asymmetric only drops positives', () => {
  const N = 5000;
  const L = 14;
  const rng = Rng.keyed('ml', 1);
  const y = Uint8Array.from({ length: N * L }, () => (rng.next() < 0.1 ? 1 : 0));
  const r = injectNoise(y, L, { type: 'flip-to-other', rate: 0.05, seed: 8 });
  assert.ok(near(r.realisedRate, 0.05, N * L), `realised ${r.realisedRate}`);
  for (const v of r.perLabelRate) assert.ok(near(v, 0.05, N), `per-label ${v}`);
  assert.ok(near(r.transition[0][1], 0.05, r.counts[0][0] + r.counts[0][1]));
  assert.ok(near(r.transition[1][0], 0.05, r.counts[1][0] + r.counts[1][1]));
  const a = injectNoise(y, L, { type: 'asymmetric', rate: 0.5, seed: 8 });
  assert.is(a.counts[0][1], 0);
  assert.ok(near(a.transition[1][0], 0.5, a.counts[1][0] + a.counts[1][1]));
  throwsMatching(() => injectNoise(y, L, { type: 'pairflip', rate: 0.1, seed: 0 }), /pairflip is not defined for multilabel/);
});

test('noise: symmetric replaces by a uniform class (true class included): flip rate r(C-1)/C, never more', () => {
  for (const [C, rate] of [[2, 0.4], [4, 0.3], [5, 0.2]] as const) {
    const n = 40000;
    const y = balanced(n, C);
    const r = injectNoise(y, C, { type: 'symmetric', rate, seed: 11 });
    const p = (rate * (C - 1)) / C;
    assert.ok(near(r.realisedRate, p, n), `C=${C} r=${rate}: realised ${r.realisedRate}, expected ${p}`);
    for (let i = 0; i < n; i++) assert.is(r.flipped[i] === 1, r.labels[i] !== y[i]);
    const nc = n / C;
    const T = expectedTransition(C, { type: 'symmetric', rate });
    for (let c = 0; c < C; c++) {
      assert.ok(Math.abs(T[c][c] - (1 - p)) < 1e-12 && Math.abs(T[c].reduce((a, b) => a + b, 0) - 1) < 1e-12);
      for (let j = 0; j < C; j++) {
        assert.ok(near(r.transition[c][j], T[c][j], nc), `C=${C} T[${c}][${j}] = ${r.transition[c][j]}, expected ${T[c][j]}`);
        if (j !== c) assert.ok(Math.abs(T[c][j] - rate / C) < 1e-12);
      }
    }
  }
  // rate 1: every label is a fresh uniform draw, so about 1/C stay (not 0 as flip-to-other)
  const n = 20000;
  const all = injectNoise(balanced(n, 2), 2, { type: 'symmetric', rate: 1, seed: 3 });
  assert.ok(near(all.realisedRate, 0.5, n), `rate 1, C 2: ${all.realisedRate}`);
  assert.is(injectNoise(balanced(n, 4), 4, { type: 'symmetric', rate: 0, seed: 3 }).realisedRate, 0);
});

test('noise: flip-to-other never keeps the class of a chosen sample and reproduces the pre-rename symmetric stream', () => {
  const C = 3;
  const n = 30000;
  const y = balanced(n, C);
  const r = injectNoise(y, C, { type: 'flip-to-other', rate: 1, seed: 5 });
  assert.is(r.realisedRate, 1);
  for (let i = 0; i < n; i++) assert.ok(r.labels[i] !== y[i]);
  for (let c = 0; c < C; c++) assert.ok(near(r.transition[c][(c + 1) % C], 0.5, n / C));
  // the pre-rename 'symmetric' algorithm, written out with its random stream (noise, seed, 'symmetric')
  const rng = Rng.keyed('noise', 9, 'symmetric');
  const old = y.slice();
  const chosen = Array.from(y, (_, i) => i).filter(() => rng.next() < 0.25); // the coins first, then the targets
  for (const i of chosen) {
    let t = rng.int(C - 1);
    if (t >= y[i]) t++;
    old[i] = t;
  }
  assert.equal(Array.from(injectNoise(y, C, { type: 'flip-to-other', rate: 0.25, seed: 9 }).labels), Array.from(old));
});

test('noise: multilabel symmetric replaces each chosen bit by a random bit (changes at rate/2)', () => {
  const N = 5000;
  const L = 10;
  const rng = Rng.keyed('ml', 2);
  const y = Uint8Array.from({ length: N * L }, () => (rng.next() < 0.2 ? 1 : 0));
  const r = injectNoise(y, L, { type: 'symmetric', rate: 0.2, seed: 4 });
  assert.ok(near(r.realisedRate, 0.1, N * L), `realised ${r.realisedRate}`);
  for (let k = 0; k < y.length; k++) assert.is(r.flipped[k] === 1, r.labels[k] !== y[k]);
});

test('augment: crop/flip are exact shifts; affine keeps content; draws in range', () => {
  // Hand-checked integer shift + flip.
  const src = Uint8Array.from({ length: 16 }, (_, i) => i + 1); // 4x4, values 1..16
  const out = new Float32Array(16);
  augmentInto(src, 1, 4, 4, { dx: 1, dy: -1, flip: false, angle: 0, scale: 1 }, [0], [1 / 255], out, 0);
  assert.equal(Array.from(out), [0, 0, 0, 0, 2, 3, 4, 0, 6, 7, 8, 0, 10, 11, 12, 0]);
  augmentInto(src, 1, 4, 4, { dx: 0, dy: 0, flip: true, angle: 0, scale: 1 }, [0], [1 / 255], out, 0);
  assert.equal(Array.from(out.subarray(0, 4)), [4, 3, 2, 1]);
  // Identity affine path (tiny angle) reproduces the image.
  augmentInto(src, 1, 4, 4, { dx: 0, dy: 0, flip: false, angle: 1e-9, scale: 1 }, [0], [1 / 255], out, 0);
  for (let i = 0; i < 16; i++) assert.ok(Math.abs(out[i] - src[i]) < 1e-3);
  // A 90-degree rotation of a 3x3 moves corners onto corners.
  const sq = Uint8Array.from([1, 0, 0, 0, 0, 0, 0, 0, 0]);
  const rot = new Float32Array(9);
  augmentInto(sq, 1, 3, 3, { dx: 0, dy: 0, flip: false, angle: Math.PI / 2, scale: 1 }, [0], [1 / 255], rot, 0);
  assert.is(Math.round(rot.reduce((x, v) => x + v, 0)), 1);
  assert.is(Math.round(rot[0]), 0);
  // Draws stay in range; flips off by default.
  const d = defaultAugment(28);
  assert.equal([d.pad, d.hflip], [2, false]);
  const rng = Rng.keyed('t');
  for (let k = 0; k < 200; k++) {
    const g = drawAugment(d, rng);
    assert.ok(Math.abs(g.dx) <= 2 && Math.abs(g.dy) <= 2 && !g.flip && Math.abs(g.angle) <= (5 * Math.PI) / 180 && Math.abs(g.scale - 1) <= 0.05);
  }
});

test.run();

// Fused KD losses vs the float64 reference (test/reference/kd.ts): loss value and gradient
// w.r.t. the student logits over T in {1, 4, 20} x alpha in {0, 0.5, 1}, with/without weights,
// teacher as probabilities, extreme logits (1e4) and T from 0.5 to 20; gradients through
// autograd vs the reference analytic gradient and central differences; errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuInit, read64, expectClose, rk } from './helpers.ts';
import { kdLoss, kdLossMultiLabel } from './reference/kd.ts';
import { numericGrad, randint, randn, randu, seededRandom } from './reference/gradcheck.ts';

const rng = seededRandom(Number(process.env.TEST_SEED ?? 5));
/** Values as the GPU sees them (f32), so the reference judges the kernel, not the upload. */
const f32r = (a: Float64Array) => Float64Array.from(Float32Array.from(a));
const softmaxRows = (z: Float64Array, C: number) => {
  const p = new Float64Array(z.length);
  for (let i = 0; i < z.length; i += C) {
    let m = -Infinity;
    for (let c = 0; c < C; c++) m = Math.max(m, z[i + c]);
    let s = 0;
    for (let c = 0; c < C; c++) s += (p[i + c] = Math.exp(z[i + c] - m));
    for (let c = 0; c < C; c++) p[i + c] /= s;
  }
  return p;
};

interface KdCase {
  zs: Float64Array;
  zt: Float64Array;
  N: number;
  C: number;
  T: number;
  alpha: number;
  w?: Float64Array;
  teacherIsProb?: boolean;
}

/** GPU loss and d loss / d zs (through autograd with an incoming gradient `seed`). */
async function gpuKd(c: KdCase, labelsOrTargets: Int32Array | Float64Array, multi: boolean, seed = 1) {
  return rk.tidyAsync(async () => {
    const zs = rk.tensor(c.zs, [c.N, c.C]).requireGrad();
    const zt = rk.tensor(c.zt, [c.N, c.C]).requireGrad();
    const weights = c.w ? rk.tensor(c.w, c.w.length === c.N ? [c.N] : [c.N, c.C]) : undefined;
    const o = { T: c.T, alpha: c.alpha, weights, teacherIsProb: c.teacherIsProb };
    const loss = multi ? rk.kdLossMultiLabel(zs, zt, rk.tensor(labelsOrTargets, [c.N, c.C], 'f32'), o) : rk.kdLoss(zs, zt, rk.tensor(labelsOrTargets, [c.N], 'i32'), o);
    assert.equal(loss.shape, [], 'scalar loss');
    loss.backward(rk.tensor([seed], []));
    const out = { loss: await loss.item(), grad: await read64(zs.grad!), teacherGrad: zt.grad };
    zs.grad!.dispose();
    return out;
  });
}

/**
 * Loss: relative error below tol.loss, or an absolute error below 1e-7 (1 + alpha T^2) (the
 * f32 floor of a loss whose CE part is ~1e-7 in size, or of T^2 times a KL of that size).
 */
function checkAgainst(got: { loss: number; grad: Float64Array }, ref: { loss: number; grad: Float64Array; T: number; alpha: number }, what: string, tol = { loss: 1e-5, grad: 1e-4 }, seed = 1) {
  const atol = 1e-7 * (1 + ref.alpha * ref.T * ref.T);
  const d = Math.abs(got.loss - ref.loss);
  assert.ok(d <= tol.loss * Math.abs(ref.loss) + atol, `${what}: loss ${got.loss} vs ${ref.loss} (|diff| ${d.toExponential(2)})`);
  expectClose(got.grad, ref.grad.map((g) => g * seed), tol.grad, `${what}: grad`);
}

test.before(gpuInit);

test('kdLoss value and gradient over T x alpha, with/without weights, teacher as logits or probabilities', async () => {
  for (const [N, C] of [
    [8, 10],
    [13, 37],
    [1, 2],
  ])
    for (const T of [1, 4, 20])
      for (const alpha of [0, 0.5, 1])
        for (const weighted of [false, true])
          for (const teacherIsProb of [false, true]) {
            const zs = f32r(randn(N * C, rng, 3));
            let zt = f32r(randn(N * C, rng, 3));
            if (teacherIsProb) {
              zt = f32r(softmaxRows(zt, C));
              zt[0] = 0; // an exact zero probability: 0 log 0 = 0
            }
            const labels = randint(N, C, rng);
            const w = weighted ? f32r(randu(N, rng, 0.1, 2)) : undefined;
            const c = { zs, zt, N, C, T, alpha, w, teacherIsProb };
            const seed = weighted ? 2.5 : 1;
            const got = await gpuKd(c, labels, false, seed);
            const ref = kdLoss(zs, zt, labels, T, alpha, w, teacherIsProb);
            checkAgainst(got, { ...ref, T, alpha }, `kdLoss N${N} C${C} T${T} alpha${alpha} w=${weighted} prob=${teacherIsProb}`, undefined, seed);
            assert.is(got.teacherGrad, null, 'the teacher gets no gradient');
          }
});

test('kdLoss is stable for logits of 1e4 and T from 0.5 to 20', async () => {
  const N = 6;
  const C = 9;
  for (const T of [0.5, 1, 4, 20])
    for (const alpha of [0, 0.5, 1]) {
      const zs = f32r(randn(N * C, rng, 1e4));
      const zt = f32r(randn(N * C, rng, 1e4));
      const labels = randint(N, C, rng);
      const got = await gpuKd({ zs, zt, N, C, T, alpha }, labels, false);
      const ref = kdLoss(zs, zt, labels, T, alpha);
      assert.ok(Number.isFinite(got.loss), `finite loss at T=${T}`);
      checkAgainst(got, { ...ref, T, alpha }, `extreme T${T} alpha${alpha}`, { loss: 1e-5, grad: 1e-4 });
    }
});

test('kdLoss: gradient vs central differences; near-zero KL stays accurate; zero when student equals teacher', async () => {
  const N = 3;
  const C = 5;
  for (const [T, alpha, teacherIsProb] of [
    [1, 0.5, false],
    [4, 1, false],
    [0.5, 0.3, true],
    [20, 0.7, false],
  ] as [number, number, boolean][]) {
    const zs = f32r(randn(N * C, rng, 2));
    const zt = teacherIsProb ? f32r(softmaxRows(randn(N * C, rng, 2), C)) : f32r(randn(N * C, rng, 2));
    const labels = randint(N, C, rng);
    const w = f32r(randu(N, rng, 0.5, 1.5));
    const got = await gpuKd({ zs, zt, N, C, T, alpha, w, teacherIsProb }, labels, false);
    const num = numericGrad((z) => kdLoss(z, zt, labels, T, alpha, w, teacherIsProb).loss, zs);
    expectClose(got.grad, num, 1e-4, `T${T} alpha${alpha} grad vs numeric`);
  }
  // Student close to the teacher: the KL (alone, alpha = 1) is tiny but keeps its relative precision.
  for (const [T, C, eps] of [
    [20, 100, 1e-2],
    [4, 10, 1e-3],
    [1, 37, 1e-3],
  ]) {
    const a = f32r(randn(4 * C, rng, 3));
    const b = f32r(a.map((v) => v + eps * rng.normal()));
    const labels = randint(4, C, rng);
    const got = await gpuKd({ zs: a, zt: b, N: 4, C, T, alpha: 1 }, labels, false);
    const ref = kdLoss(a, b, labels, T, 1);
    expectClose([got.loss], [ref.loss], 1e-4, `near-identical T${T} C${C}: loss ${ref.loss.toExponential(2)}`);
    const tg = Float64Array.from(randint(4 * C, 2, rng));
    const gotM = await gpuKd({ zs: a, zt: b, N: 4, C, T, alpha: 1 }, tg, true);
    const refM = kdLossMultiLabel(a, b, tg, T, 1);
    expectClose([gotM.loss], [refM.loss], 1e-4, `multi near-identical T${T}: loss ${refM.loss.toExponential(2)}`);
  }
  const zs = f32r(randn(4 * 6, rng, 5));
  for (const T of [1, 20]) {
    const got = await gpuKd({ zs, zt: zs, N: 4, C: 6, T, alpha: 1 }, randint(4, 6, rng), false);
    assert.ok(Math.abs(got.loss) < 1e-5 * T * T, `KL(p||p) = ${got.loss} at T=${T}`);
    assert.ok(got.grad.every((g) => Math.abs(g) < 1e-6), 'zero gradient when student equals teacher');
  }
});

test('kdLossMultiLabel value and gradient over T x alpha, weights per sample / per element, teacher probabilities', async () => {
  for (const [N, C] of [
    [8, 14],
    [5, 3],
  ])
    for (const T of [1, 4, 20])
      for (const alpha of [0, 0.5, 1])
        for (const wmode of ['none', 'sample', 'element'] as const) {
          const zs = f32r(randn(N * C, rng, 3));
          const zt = f32r(randn(N * C, rng, 3));
          const targets = Float64Array.from(randint(N * C, 2, rng));
          const w = wmode === 'none' ? undefined : f32r(randu(wmode === 'sample' ? N : N * C, rng, 0.1, 2));
          const got = await gpuKd({ zs, zt, N, C, T, alpha, w }, targets, true);
          const ref = kdLossMultiLabel(zs, zt, targets, T, alpha, w);
          checkAgainst(got, { ...ref, T, alpha }, `multi N${N} C${C} T${T} alpha${alpha} w=${wmode}`);
          assert.is(got.teacherGrad, null);
        }
  // Teacher probabilities: the reference with logits log(p / (1 - p)).
  const N = 6;
  const C = 4;
  const zs = f32r(randn(N * C, rng, 2));
  const p = f32r(randu(N * C, rng, 0.01, 0.99));
  const targets = Float64Array.from(randint(N * C, 2, rng));
  for (const T of [1, 4]) {
    const got = await gpuKd({ zs, zt: p, N, C, T, alpha: 0.6, teacherIsProb: true }, targets, true);
    checkAgainst(got, { ...kdLossMultiLabel(zs, p.map((q) => Math.log(q / (1 - q))), targets, T, 0.6), T, alpha: 0.6 }, `multi teacher probabilities T${T}`);
  }
});

test('kdLossMultiLabel: extreme logits, T from 0.5 to 20, gradient vs central differences', async () => {
  const N = 4;
  const C = 5;
  for (const T of [0.5, 1, 20])
    for (const alpha of [0, 0.5, 1]) {
      const zs = f32r(randn(N * C, rng, 1e4));
      const zt = f32r(randn(N * C, rng, 1e4));
      const targets = Float64Array.from(randint(N * C, 2, rng));
      const got = await gpuKd({ zs, zt, N, C, T, alpha }, targets, true);
      assert.ok(Number.isFinite(got.loss));
      checkAgainst(got, { ...kdLossMultiLabel(zs, zt, targets, T, alpha), T, alpha }, `multi extreme T${T} alpha${alpha}`);
    }
  for (const [T, alpha] of [
    [1, 0.5],
    [4, 0.8],
    [20, 0.2],
  ]) {
    const zs = f32r(randn(N * C, rng, 2));
    const zt = f32r(randn(N * C, rng, 2));
    const targets = Float64Array.from(randint(N * C, 2, rng));
    const w = f32r(randu(N, rng, 0.5, 1.5));
    const got = await gpuKd({ zs, zt, N, C, T, alpha, w }, targets, true);
    expectClose(got.grad, numericGrad((z) => kdLossMultiLabel(z, zt, targets, T, alpha, w).loss, zs), 1e-4, `multi T${T} grad vs numeric`);
  }
});

test('kdLoss inside a larger graph, no-grad use, and memory', async () => {
  const N = 5;
  const C = 7;
  const zs = f32r(randn(N * C, rng));
  const zt = f32r(randn(N * C, rng));
  const labels = randint(N, C, rng);
  const before = rk.memoryStats().liveBytes;
  // d/dzs of 3 * kdLoss(2 * zs): chain rule through the scalar output.
  const g = await rk.tidyAsync(async () => {
    const x = rk.tensor(zs, [N, C]).requireGrad();
    const l = rk.mulScalar(rk.kdLoss(rk.mulScalar(x, 2), rk.tensor(zt, [N, C]), rk.tensor(labels, [N], 'i32'), { T: 4, alpha: 0.5 }), 3);
    l.backward();
    const out = await read64(x.grad!);
    x.grad!.dispose();
    return out;
  });
  expectClose(g, kdLoss(zs.map((v) => 2 * v), zt, labels, 4, 0.5).grad.map((v) => 6 * v), 1e-5, 'chain rule');
  const l = await rk.tidyAsync(async () => rk.noGrad(() => rk.kdLoss(rk.tensor(zs, [N, C]), rk.tensor(zt, [N, C]), rk.tensor(labels, [N], 'i32'), { T: 2, alpha: 0.5 }).item()));
  expectClose([l], [kdLoss(zs, zt, labels, 2, 0.5).loss], 2e-5, 'no-grad loss');
  assert.is(rk.memoryStats().liveBytes, before, 'live bytes');
});

test('bad input gives clear errors; an out-of-range label gives NaN', async () => {
  await rk.tidyAsync(async () => {
    const zs = rk.zeros([4, 3]);
    const lab = rk.tensor([0, 1, 2, 0], [4], 'i32');
    assert.throws(() => rk.kdLoss(zs, zs, lab, { T: 0, alpha: 0.5 }), /kdLoss: temperature T must be a positive number, got 0/);
    assert.throws(() => rk.kdLoss(zs, zs, lab, { T: -1, alpha: 0.5 }), /T must be a positive number, got -1/);
    assert.throws(() => rk.kdLoss(zs, zs, lab, { T: 1, alpha: 1.5 }), /kdLoss: alpha must lie in \[0, 1\], got 1.5/);
    assert.throws(() => rk.kdLoss(zs, zs, rk.tensor([0, 1, 2], [3], 'i32'), { T: 1, alpha: 0.5 }), /kdLoss: labels \[3\] do not match logits \[4, 3\] \(expected \[4\]\)/);
    assert.throws(() => rk.kdLoss(zs, zs, rk.zeros([4]), { T: 1, alpha: 0.5 }), /kdLoss: labels must be i32/);
    assert.throws(() => rk.kdLoss(zs, rk.zeros([4, 2]), lab, { T: 1, alpha: 0.5 }), /kdLoss: teacher zt \[4, 2\] does not match student logits zs \[4, 3\]/);
    assert.throws(() => rk.kdLoss(zs, zs, lab, { T: 1, alpha: 0.5, weights: rk.ones([3]) }), /kdLoss: weights \[3\] do not match/);
    assert.throws(() => rk.kdLossMultiLabel(zs, zs, rk.zeros([4, 2]), { T: 1, alpha: 0.5 }), /kdLossMultiLabel: targets \[4, 2\] do not match logits \[4, 3\]/);
    assert.throws(() => rk.kdLossMultiLabel(zs, zs, zs, { T: 1, alpha: -0.1 }), /kdLossMultiLabel: alpha must lie in \[0, 1\], got -0.1/);
    assert.throws(() => rk.kdLossMultiLabel(zs, zs, zs, { T: 1, alpha: 0.5, weights: rk.ones([3]) }), /weights \[3\] must be \[4\] or \[4, 3\]/);
    const bad = await rk.kdLoss(zs, zs, rk.tensor([0, 1, 3, 0], [4], 'i32'), { T: 1, alpha: 0.5 }).item();
    assert.ok(Number.isNaN(bad), `out-of-range label gives NaN, got ${bad}`);
  });
});

test.run();

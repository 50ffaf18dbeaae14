// crossEntropy and bceWithLogits against the float64 references: every reduction, with and
// without (per-sample / per-element) weights, extreme logits, gradients w.r.t. logits, soft
// targets and weights (finite differences and the reference's analytic dlogits), bad inputs.
// Tolerances (relative L2): forward 1e-5, gradients 1e-4.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuInit, read64, expectClose, rk } from './helpers.ts';
import * as ref from './reference/core.ts';
import { numericGrad, seededRandom } from './reference/gradcheck.ts';

const SEED = Number(process.env.ROSKD_SEED ?? Date.now() % 1_000_000_007);
const rng = seededRandom(SEED);
console.log(`losses: seed ${SEED} (ROSKD_SEED=${SEED} replays this run)`);

type Reduction = 'mean' | 'sum' | 'none';
const REDUCTIONS: Reduction[] = ['mean', 'sum', 'none'];
const numel = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);
const f32 = (a: ArrayLike<number>): Float64Array => Float64Array.from(Float32Array.from(a));
const randn = (n: number, scale = 1): Float64Array => f32(Float64Array.from({ length: n }, () => scale * rng.normal()));
const randu = (n: number, lo = 0, hi = 1): Float64Array => f32(Float64Array.from({ length: n }, () => lo + (hi - lo) * rng.uniform()));
const randLabels = (n: number, c: number): Int32Array => Int32Array.from({ length: n }, () => Math.floor(rng.uniform() * c));
const upF = (d: ArrayLike<number>, shape: number[]): rk.Tensor => rk.tensor(Float32Array.from(d), shape);
const dot = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
};

/**
 * Uploads class labels, checking on the CPU that each lies in [0, C): the GPU kernels cannot
 * raise (an out-of-range label makes that sample's loss NaN), so host data is checked here.
 */
function uploadLabels(labels: Int32Array, numClasses: number): rk.Tensor {
  labels.forEach((y, i) => {
    if (!Number.isInteger(y) || y < 0 || y >= numClasses) throw new RangeError(`label ${i} is ${y}, outside [0, ${numClasses})`);
  });
  return rk.tensor(labels, [labels.length], 'i32');
}

/** Weighted per-item losses reduced like the GPU op. */
function reduceRef(l: Float64Array, w: Float64Array | null, r: Reduction): Float64Array {
  const wl = l.map((v, i) => v * (w ? w[i] : 1));
  if (r === 'none') return wl;
  const s = wl.reduce((a, b) => a + b, 0);
  if (r === 'sum') return Float64Array.of(s);
  return Float64Array.of(s / (w ? w.reduce((a, b) => a + b, 0) : l.length));
}
/** Unweighted per-sample cross-entropy -log softmax(z_i)[y_i]. */
function ceLosses(z: Float64Array, y: Int32Array, C: number): Float64Array {
  const lp = ref.logSoftmax(z, [y.length, C], 1);
  return Float64Array.from(y, (t, i) => -lp[i * C + t]);
}
/** Unweighted elementwise BCE with logits, softplus(x) - x t. */
const bceLosses = (x: Float64Array, t: Float64Array): Float64Array => x.map((v, i) => ref.softplus(v) - v * t[i]);
const expandW = (w: Float64Array | null, n: number, N: number): Float64Array | null => (w ? ref.elementWeights(w, n, N) : null);

/** GPU gradients of sum(probe * f(xs)) w.r.t. the inputs listed in `wrt`. */
async function gpuGrads(f: (xs: rk.Tensor[]) => rk.Tensor, inputs: [Float64Array, number[]][], probe: Float64Array, wrt: number[]): Promise<Float64Array[]> {
  return rk.tidyAsync(async () => {
    const xs = inputs.map(([d, s]) => upF(d, s));
    for (const i of wrt) xs[i].requireGrad();
    const y = f(xs);
    rk.sum(rk.mul(y, upF(probe, [...y.shape]))).backward();
    const out: Float64Array[] = [];
    for (const i of wrt) {
      out.push(await read64(xs[i].grad!));
      xs[i].grad!.dispose();
    }
    return out;
  });
}

async function checkFD(what: string, f: (xs: rk.Tensor[]) => rk.Tensor, refF: (xs: Float64Array[]) => Float64Array, inputs: [Float64Array, number[]][], wrt: number[]): Promise<void> {
  const probe = randn(refF(inputs.map(([d]) => d)).length);
  const got = await gpuGrads(f, inputs, probe, wrt);
  wrt.forEach((i, k) => {
    const fd = numericGrad((v) => dot(probe, refF(inputs.map(([d], j) => (j === i ? v : d)))), inputs[i][0]);
    expectClose(got[k], fd, 1e-4, `${what}: d/d(input ${i}) vs finite differences (seed ${SEED})`);
  });
}

test.before(gpuInit);

// ---- cross-entropy ------------------------------------------------------------------------

test('crossEntropy: forward, every reduction, with and without weights, odd sizes', async () => {
  for (const [N, C] of [
    [1, 1],
    [1, 5],
    [7, 2],
    [64, 10],
    [33, 1000],
  ]) {
    const z = randn(N * C, 3);
    const y = randLabels(N, C);
    const w = randu(N, 0.1, 2);
    for (const r of REDUCTIONS)
      for (const weights of [null, w]) {
        const out = rk.crossEntropy(upF(z, [N, C]), uploadLabels(y, C), { reduction: r, weights: weights && upF(weights, [N]) });
        assert.equal([...out.shape], r === 'none' ? [N] : [], `crossEntropy ${r} shape`);
        expectClose(await read64(out), reduceRef(ceLosses(z, y, C), weights, r), 1e-5, `crossEntropy [${N}, ${C}] ${r}${weights ? ' weighted' : ''} (seed ${SEED})`, 2e-6);
      }
    // the default is a (weighted) mean, as the reference computes it
    expectClose(await read64(rk.crossEntropy(upF(z, [N, C]), uploadLabels(y, C), { weights: upF(w, [N]) })), [ref.crossEntropy(z, y, w).loss], 1e-5, 'crossEntropy default reduction', 2e-6);
  }
});

test('crossEntropy: stable for huge logits', async () => {
  const z = f32([1e4, -1e4, 0, 5e3, 5e3 + 1, -3e4, 80, 90, 100]);
  const y = Int32Array.from([1, 0, 2]);
  const got = await read64(rk.crossEntropy(upF(z, [3, 3]), uploadLabels(y, 3), { reduction: 'none' }));
  expectClose(got, ceLosses(z, y, 3), 1e-6, 'crossEntropy of huge logits');
  const g = upF(z, [3, 3]).requireGrad();
  rk.crossEntropy(g, uploadLabels(y, 3)).backward();
  expectClose(await read64(g.grad!), ref.crossEntropy(z, y).dlogits, 1e-5, 'crossEntropy gradient at huge logits');
});

test('crossEntropy: backward vs the reference dlogits (softmax - onehot) * w / sum(w)', async () => {
  for (const [N, C] of [
    [1, 3],
    [16, 10],
    [50, 129],
  ]) {
    const z = randn(N * C, 2);
    const y = randLabels(N, C);
    for (const w of [null, randu(N, 0, 2)]) {
      const x = upF(z, [N, C]).requireGrad();
      rk.crossEntropy(x, uploadLabels(y, C), { weights: w && upF(w, [N]) }).backward();
      expectClose(await read64(x.grad!), ref.crossEntropy(z, y, w).dlogits, 1e-4, `crossEntropy dlogits [${N}, ${C}]${w ? ' weighted' : ''} (seed ${SEED})`);
    }
  }
});

test('crossEntropy: backward vs finite differences, every reduction, to logits and weights', async () => {
  const [N, C] = [4, 3];
  const y = randLabels(N, C);
  for (const r of REDUCTIONS) {
    await checkFD(`crossEntropy ${r}`, ([z]) => rk.crossEntropy(z, uploadLabels(y, C), { reduction: r }), ([z]) => reduceRef(ceLosses(z, y, C), null, r), [[randn(N * C), [N, C]]], [0]);
    await checkFD(
      `crossEntropy ${r} weighted`,
      ([z, w]) => rk.crossEntropy(z, uploadLabels(y, C), { reduction: r, weights: w }),
      ([z, w]) => reduceRef(ceLosses(z, y, C), w, r),
      [
        [randn(N * C), [N, C]],
        [randu(N, 0.2, 2), [N]],
      ],
      [0, 1],
    );
  }
});

test('crossEntropy: labels are checked on upload; on the GPU an out-of-range label gives NaN', async () => {
  assert.throws(() => uploadLabels(Int32Array.from([0, 3]), 3), /label 1 is 3, outside \[0, 3\)/);
  const bad = rk.tensor(Int32Array.from([0, 3, -1]), [3], 'i32');
  const l = await read64(rk.crossEntropy(upF(randn(9), [3, 3]), bad, { reduction: 'none' }));
  assert.ok(Number.isFinite(l[0]) && Number.isNaN(l[1]) && Number.isNaN(l[2]), `out-of-range labels give NaN losses: ${[...l]}`);
});

test('crossEntropy: clear errors for bad inputs', () => {
  const z = rk.zeros([4, 3]);
  const y = rk.tensor(Int32Array.from([0, 1, 2, 0]), [4], 'i32');
  assert.throws(() => rk.crossEntropy(z, rk.zeros([4])), /crossEntropy: labels must be i32, got \[4\] f32/);
  assert.throws(() => rk.crossEntropy(z, rk.tensor(Int32Array.from([0, 1]), [2], 'i32')), /crossEntropy: labels \[2\] do not match logits \[4, 3\]/);
  assert.throws(() => rk.crossEntropy(rk.zeros([12]), y), /crossEntropy: logits must have rank 2, got \[12\]/);
  assert.throws(() => rk.crossEntropy(z, y, { weights: rk.zeros([3]) }), /crossEntropy: weights \[3\] do not match logits \[4, 3\]/);
  assert.throws(() => rk.crossEntropy(z, y, { reduction: 'avg' as 'mean' }), /reduction must be 'mean', 'sum' or 'none', got 'avg'/);
});

// ---- binary cross-entropy -----------------------------------------------------------------

test('bceWithLogits: forward, every reduction, per-element and per-sample weights, any rank', async () => {
  for (const shape of [[1], [7], [5, 3], [4, 3, 5], [2, 1, 3, 1, 2]]) {
    const n = numel(shape);
    const x = randn(n, 3);
    const t = randu(n);
    for (const weights of [null, randu(n, 0.1, 2), randu(shape[0], 0.1, 2)])
      for (const r of REDUCTIONS) {
        const wShape = weights && weights.length === n && n !== shape[0] ? shape : [weights?.length ?? 0];
        const out = rk.bceWithLogits(upF(x, shape), upF(t, shape), { reduction: r, weights: weights && upF(weights, weights.length === n ? shape : [shape[0]]) });
        assert.equal([...out.shape], r === 'none' ? shape : [], `bce ${r} shape`);
        const want = reduceRef(bceLosses(x, t), expandW(weights, n, shape[0]), r);
        expectClose(await read64(out), want, 1e-5, `bceWithLogits ${JSON.stringify(shape)} ${r} weights ${weights ? JSON.stringify(wShape) : 'none'} (seed ${SEED})`);
      }
    expectClose(await read64(rk.bceWithLogits(upF(x, shape), upF(t, shape))), [ref.bceWithLogits(x, t, shape).loss], 1e-5, 'bce default reduction = reference mean');
  }
});

test('bceWithLogits: stable for huge logits (no overflow, no log(0))', async () => {
  const x = f32([100, -100, 1e4, -1e4, 0, 30]);
  const t = f32([0, 1, 1, 0, 0.5, 0.25]);
  expectClose(await read64(rk.bceWithLogits(upF(x, [6]), upF(t, [6]), { reduction: 'none' })), bceLosses(x, t), 1e-6, 'bce of huge logits');
  const g = upF(x, [6]).requireGrad();
  rk.bceWithLogits(g, upF(t, [6])).backward();
  expectClose(await read64(g.grad!), ref.bceWithLogits(x, t, [6]).dlogits, 1e-6, 'bce gradient at huge logits');
});

test('bceWithLogits: backward vs reference dlogits and finite differences (logits, soft targets, weights)', async () => {
  for (const shape of [[16], [9, 7]]) {
    const n = numel(shape);
    const x = randn(n, 2);
    const t = randu(n);
    for (const w of [null, randu(shape[0], 0, 2), randu(n, 0, 2)]) {
      const g = upF(x, shape).requireGrad();
      rk.bceWithLogits(g, upF(t, shape), { weights: w && upF(w, w.length === n ? shape : [shape[0]]) }).backward();
      expectClose(await read64(g.grad!), ref.bceWithLogits(x, t, shape, w).dlogits, 1e-4, `bce dlogits ${JSON.stringify(shape)} weights ${w?.length ?? 'none'} (seed ${SEED})`);
    }
  }
  const shape = [3, 2];
  for (const r of REDUCTIONS)
    for (const wn of [3, 6]) {
      const wShape = wn === 3 ? [3] : shape;
      await checkFD(
        `bce ${r} weights ${JSON.stringify(wShape)}`,
        ([x, t, w]) => rk.bceWithLogits(x, t, { reduction: r, weights: w }),
        ([x, t, w]) => reduceRef(bceLosses(x, t), expandW(w, 6, 3), r),
        [
          [randn(6, 2), shape],
          [randu(6), shape],
          [randu(wn, 0.2, 2), wShape],
        ],
        [0, 1, 2],
      );
    }
  // only the targets need a gradient (e.g. a learned soft target)
  await checkFD('bce targets only', ([x, t]) => rk.bceWithLogits(x, t, { reduction: 'sum' }), ([x, t]) => reduceRef(bceLosses(x, t), null, 'sum'), [
    [randn(5), [5]],
    [randu(5), [5]],
  ], [1]);
});

test('bceWithLogits: clear errors for bad inputs', () => {
  const x = rk.zeros([4, 3]);
  assert.throws(() => rk.bceWithLogits(x, rk.zeros([4, 2])), /bceWithLogits: targets \[4, 2\] do not match logits \[4, 3\]/);
  assert.throws(() => rk.bceWithLogits(x, rk.tensor(new Int32Array(12), [4, 3], 'i32')), /bceWithLogits: targets must be f32/);
  assert.throws(() => rk.bceWithLogits(x, rk.zeros([4, 3]), { weights: rk.zeros([3]) }), /bceWithLogits: weights \[3\] fit neither logits \[4, 3\] \(per element\) nor \[4\] \(per sample\)/);
});

test.run();

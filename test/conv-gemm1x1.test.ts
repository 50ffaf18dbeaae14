// The 1x1 weight gradient on the matmul kernel (engine/ops/conv-gemm1x1.ts: gy[n] . x[n]ᵀ per
// image, then a batch sum), forced on with conv2dTuning.gemm1x1Wgrad and picked by shape, against
// the float64 reference (test/reference/conv.ts) and central differences. Buffers are poisoned
// with NaN (gpuInit), so an unwritten element fails.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuInit, read64, expectClose, rk } from './helpers.ts';
import { conv2d as refConv, conv2dBackward as refConvBackward, type Conv2dOptions as RefOptions } from './reference/conv.ts';
import { numericGrad, randn, seededRandom } from './reference/gradcheck.ts';
import { conv2dTuning, convGeometry } from '../engine/ops/conv.ts';
import { gemm1x1, gemm1x1Wgrad } from '../engine/ops/conv-gemm1x1.ts';

const rng = seededRandom(Number(process.env.TEST_SEED ?? 23));
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

interface Case {
  x: [number, number, number, number];
  cout: number;
  stride: number;
}
const ref1x1 = (stride: number): RefOptions => ({ stride: [stride, stride], padding: [0, 0, 0, 0], dilation: [1, 1], groups: 1 });
const label = (c: Case) => `1x1 x[${c.x}] -> ${c.cout} s${c.stride}`;
const geometry = (c: Case) => convGeometry(c.x, [c.cout, c.x[1], 1, 1], { sh: c.stride, sw: c.stride, pt: 0, pb: 0, pl: 0, pr: 0, dh: 1, dw: 1, groups: 1 });

/** dw (and dx, for the other paths around it) of sum(conv(x, w) * r) on the GPU. */
async function grads(c: Case, x: Float64Array, w: Float64Array, r: Float64Array) {
  return rk.tidyAsync(async () => {
    const xt = rk.tensor(x, c.x).requireGrad();
    const wt = rk.tensor(w, [c.cout, c.x[1], 1, 1]).requireGrad();
    const y = rk.conv2d(xt, wt, null, { stride: c.stride });
    rk.sum(rk.mul(y, rk.tensor(r, y.shape))).backward();
    const out = { dw: await read64(wt.grad!), dx: await read64(xt.grad!) };
    xt.grad!.dispose();
    wt.grad!.dispose();
    return out;
  });
}

test.before(gpuInit);
test.after.each(() => {
  conv2dTuning.gemm1x1Wgrad = undefined;
});

// stride 1 and 2 (sampled rows of whole vec4s), batch 1 and 3, channel counts not multiples of
// the GEMM's 32x4 tiles
const FORCED: Case[] = [
  { x: [3, 12, 6, 8], cout: 20, stride: 1 },
  { x: [1, 36, 4, 4], cout: 44, stride: 1 },
  { x: [2, 8, 10, 16], cout: 12, stride: 2 },
  { x: [3, 4, 2, 2], cout: 4, stride: 1 },
];

test('1x1 weight gradient on the matmul kernel (forced) matches the reference (rel. L2 < 1e-5)', async () => {
  for (const c of FORCED) {
    conv2dTuning.gemm1x1Wgrad = true;
    if (!gemm1x1Wgrad(geometry(c))) {
      console.log(`conv-gemm1x1: ${label(c)} not on the matmul kernel on this adapter (no 8-lane subgroups): checked on the conv kernel`);
      assert.not.ok(gemm1x1(geometry(c)), 'only where gemm1x1 does not apply');
    }
    const w = [c.cout, c.x[1], 1, 1];
    const x = randn(numel(c.x), rng);
    const wv = randn(numel(w), rng);
    const r = randn(numel(refConv(x, c.x, wv, w, null, ref1x1(c.stride)).shape), rng);
    const got = await grads(c, x, wv, r);
    const ref = refConvBackward(x, c.x, wv, w, r, ref1x1(c.stride));
    expectClose(got.dw, ref.dw, 1e-5, `${label(c)}: dw`);
    expectClose(got.dx, ref.dx, 1e-5, `${label(c)}: dx`);
  }
});

test('1x1 weight gradient on the matmul kernel matches central differences of the reference', async () => {
  const c: Case = { x: [2, 4, 4, 4], cout: 8, stride: 1 };
  conv2dTuning.gemm1x1Wgrad = true;
  const w = [c.cout, c.x[1], 1, 1];
  const x = randn(numel(c.x), rng);
  const wv = randn(numel(w), rng);
  const r = randn(c.x[0] * c.cout * 16, rng);
  const got = await grads(c, x, wv, r);
  const loss = (v: Float64Array) => {
    const y = refConv(x, c.x, v, w, null, ref1x1(1)).y;
    let s = 0;
    for (let i = 0; i < y.length; i++) s += r[i] * y[i];
    return s;
  };
  expectClose(got.dw, numericGrad(loss, wv), 1e-4, `${label(c)}: dw vs central differences`);
});

test('the shape rule takes the matmul kernel for wide 28 px layers only, and it matches the reference', async () => {
  const wide: Case = { x: [2, 64, 28, 28], cout: 64, stride: 1 };
  const S = rk.getGpu().subgroupSize;
  if (gemm1x1(geometry(wide))) {
    assert.ok(gemm1x1Wgrad(geometry(wide)), '64 -> 64 at 28 px: matmul');
    assert.not.ok(gemm1x1Wgrad(geometry({ x: [2, 64, 28, 28], cout: 32, stride: 1 })), '64 -> 32 at 28 px: conv kernel');
    assert.not.ok(gemm1x1Wgrad(geometry({ x: [2, 256, 14, 14], cout: 128, stride: 1 })), '256 -> 128 at 14 px: conv kernel');
    assert.ok(gemm1x1Wgrad(geometry({ x: [2, 512, 14, 14], cout: 128, stride: 1 })), '512 -> 128 at 14 px: matmul');
    assert.not.ok(gemm1x1Wgrad(geometry({ x: [2, 1024, 7, 7], cout: 128, stride: 1 })), '7 px: conv kernel');
  } else console.log(`conv-gemm1x1: subgroup size ${S}: 1x1 convs stay on the conv kernel here; the reference check still runs`);
  const w = [wide.cout, wide.x[1], 1, 1];
  const x = randn(numel(wide.x), rng);
  const wv = randn(numel(w), rng);
  const r = randn(wide.x[0] * wide.cout * 28 * 28, rng);
  const got = await grads(wide, x, wv, r);
  expectClose(got.dw, refConvBackward(x, wide.x, wv, w, r, ref1x1(1)).dw, 1e-5, `${label(wide)}: dw`);
  // the path really ran (kernel names, where the adapter has timestamps)
  if (gemm1x1(geometry(wide)) && rk.getGpu().hasTimestamps) {
    rk.setProfiling(true);
    await grads(wide, x, wv, r);
    const kernels = [...(await rk.kernelProfile()).keys()];
    rk.setProfiling(false);
    assert.ok(kernels.includes('conv2d_matmul_dw'), `kernels run: ${kernels.join(', ')}`);
    assert.not.ok(kernels.includes('conv2d_wgrad'), `kernels run: ${kernels.join(', ')}`);
  }
});

test('the matmul weight gradient releases its intermediates', async () => {
  const c = FORCED[0];
  conv2dTuning.gemm1x1Wgrad = true;
  const x = randn(numel(c.x), rng);
  const w = randn(c.cout * c.x[1], rng);
  const r = randn(c.x[0] * c.cout * c.x[2] * c.x[3], rng);
  await grads(c, x, w, r);
  await rk.sync();
  const before = rk.memoryStats();
  await grads(c, x, w, r);
  await rk.sync();
  const after = rk.memoryStats();
  assert.is(after.liveBuffers, before.liveBuffers, 'live buffers unchanged');
  assert.is(after.liveBytes, before.liveBytes, 'live bytes unchanged');
});

test.run();

// Winograd conv2d (engine/ops/conv-winograd.ts), forced on, vs the float64 reference
// (test/reference/conv.ts): forward, backward-data and backward-weight for F(2x2,3x3) and F(4x4,3x3) on odd sizes
// (7x9, 1x1 images, 5x6, 6x8), padding 0, 1, 3 and asymmetric, batch 1 and 3, channel counts that are
// not multiples of 4; chunked batches; finite differences of the op itself; the error on ResNet
// shapes; which convs take the Winograd path by default. Output buffers are poisoned (gpuInit).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuInit, read64, expectClose, rk } from './helpers.ts';
import { conv2d as refConv, conv2dBackward as refConvBackward, type Conv2dOptions as RefOptions } from './reference/conv.ts';
import { numericGrad, randn, seededRandom, relL2 } from './reference/gradcheck.ts';
import { conv2dTuning } from '../engine/ops/conv.ts';
import { winogradTuning } from '../engine/ops/conv-winograd.ts';

const rng = seededRandom(Number(process.env.TEST_SEED ?? 17));
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

interface Case {
  x: [number, number, number, number];
  cout: number;
  pad: [number, number, number, number]; // top, bottom, left, right
  bias: boolean;
}
const label = (c: Case) => `x[${c.x}] -> ${c.cout} p${c.pad.join(',')}${c.bias ? ' +bias' : ''}`;
const wShape = (c: Case) => [c.cout, c.x[1], 3, 3];
const refOpts = (c: Case): RefOptions => ({ stride: [1, 1], padding: c.pad, dilation: [1, 1], groups: 1 });

const CASES: Case[] = [
  { x: [1, 5, 7, 9], cout: 6, pad: [1, 1, 1, 1], bias: true },
  { x: [3, 3, 7, 9], cout: 7, pad: [0, 0, 0, 0], bias: false },
  { x: [3, 6, 1, 1], cout: 5, pad: [1, 1, 1, 1], bias: true },
  { x: [1, 9, 5, 6], cout: 2, pad: [0, 2, 1, 0], bias: true },
  { x: [3, 8, 11, 10], cout: 12, pad: [2, 1, 0, 2], bias: false },
  { x: [1, 1, 3, 3], cout: 1, pad: [0, 0, 0, 0], bias: true },
  { x: [2, 5, 6, 8], cout: 6, pad: [1, 1, 1, 1], bias: true }, // Wo % 4 == 0, Ho % 4 != 0
  { x: [1, 4, 5, 7], cout: 3, pad: [3, 0, 1, 3], bias: false }, // padding 3: backward-data crops gy
  // the direct-read input transform's vec4 loads (planes of whole vec4s): the window's offset in
  // its first vec4 is 0 and 2 (x, gy), 1 or 3 changing row by row (W % 4 == 2, odd W), and
  // negative padding (backward-data of padding 3 crops gy)
  { x: [2, 5, 7, 8], cout: 6, pad: [0, 1, 0, 2], bias: true },
  { x: [1, 6, 6, 10], cout: 5, pad: [1, 1, 1, 1], bias: false },
  { x: [2, 3, 4, 5], cout: 4, pad: [2, 0, 3, 1], bias: true },
  { x: [2, 6, 5, 4], cout: 3, pad: [3, 0, 3, 3], bias: false },
];

/**
 * Error bound. Each output is a sum over Cin*9 products computed as Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A in
 * float32; the transforms' coefficients (F(2x2): 0, ±1/2, ±1; F(4x4): up to 5 in Bᵀ, 8 in Aᵀ,
 * 1/24 in G) scale the rounding of the intermediate sums, so the error grows with them, not with
 * the data. Measured rel. L2 error (random normal data): F(2x2) 1-2e-7, like the direct conv;
 * F(4x4) 5e-7 to 1.3e-6 on these small cases, and see the ResNet-shape test. 1e-5 leaves a
 * margin of 8x over the worst measured F(4x4) value and still fails any wrong tap (error ~1).
 */
const TOL = 1e-5;
/** Wide ResNet layers (up to 512 channels): rel. L2 and max error / max |y| bounds (see the test). */
const RESNET_TOL = 2e-5;
const RESNET_MAX = 5e-5;

test.before(gpuInit);
test.after.each(() => {
  conv2dTuning.winograd = undefined;
  winogradTuning.M = undefined;
  winogradTuning.chunkBytes = undefined;
  winogradTuning.direct = undefined;
  winogradTuning.keepV = undefined;
  winogradTuning.vec4Out = undefined;
});

async function runGpu(c: Case, x: Float64Array, w: Float64Array, b: Float64Array | null, r: Float64Array) {
  return rk.tidyAsync(async () => {
    const xt = rk.tensor(x, c.x).requireGrad();
    const wt = rk.tensor(w, wShape(c)).requireGrad();
    const y = rk.conv2d(xt, wt, b ? rk.tensor(b, [c.cout]) : null, { padding: c.pad });
    rk.sum(rk.mul(y, rk.tensor(r, y.shape))).backward();
    const out = { y: await read64(y), shape: [...y.shape], dx: await read64(xt.grad!), dw: await read64(wt.grad!) };
    xt.grad!.dispose();
    wt.grad!.dispose();
    return out;
  });
}

// direct: the input transform reads x itself (default) or a padded copy; keepV: the weight
// gradient uses the forward's input transform (default) or transforms x again; the third run
// also stores y as scalars (vec4Out false) where Wo % 4 == 0
for (const [M, direct, keepV] of [[2, true, true], [4, true, true], [4, false, false]] as const)
  test(`Winograd F(${M}x${M},3x3) forward, backward-data and backward-weight match the float64 reference on odd shapes (rel. L2 < ${TOL}), input transform reading ${direct ? 'x directly' : 'a padded copy'}, ${keepV ? "the forward's V kept" : 'x transformed again'} for the weight gradient`, async () => {
    for (const c of CASES) {
      conv2dTuning.winograd = true;
      winogradTuning.M = M;
      winogradTuning.direct = direct;
      winogradTuning.keepV = keepV;
      winogradTuning.vec4Out = direct;
      const x = randn(numel(c.x), rng);
      const w = randn(numel(wShape(c)), rng);
      const b = c.bias ? randn(c.cout, rng) : null;
      const ref = refConv(x, c.x, w, wShape(c), b, refOpts(c));
      const r = randn(ref.y.length, rng);
      const got = await runGpu(c, x, w, b, r);
      assert.equal(got.shape, ref.shape, `${label(c)}: shape`);
      expectClose(got.y, ref.y, TOL, `F(${M}) ${label(c)}: y`);
      const rb = refConvBackward(x, c.x, w, wShape(c), r, refOpts(c));
      expectClose(got.dx, rb.dx, TOL, `F(${M}) ${label(c)}: dx`);
      expectClose(got.dw, rb.dw, TOL, `F(${M}) ${label(c)}: dw`);
    }
  });

test('Winograd runs a batch in chunks when V / M would exceed the binding limit (chunkBytes); the weight gradient then runs direct', async () => {
  const c: Case = { x: [5, 4, 6, 7], cout: 5, pad: [1, 1, 1, 1], bias: true };
  for (const M of [2, 4] as const) {
    conv2dTuning.winograd = true;
    winogradTuning.M = M;
    // one image's V: (M+2)^2 transforms x tiles x 4 padded channels x 4 bytes; two images per chunk: 3 chunks for 5 images
    const tiles = Math.ceil(6 / M) * Math.ceil(7 / M);
    winogradTuning.chunkBytes = 2 * (M + 2) ** 2 * tiles * 8 * 4;
    const x = randn(numel(c.x), rng);
    const w = randn(numel(wShape(c)), rng);
    const b = randn(c.cout, rng);
    const ref = refConv(x, c.x, w, wShape(c), b, refOpts(c));
    const r = randn(ref.y.length, rng);
    const got = await runGpu(c, x, w, b, r);
    expectClose(got.y, ref.y, TOL, `F(${M}) chunked: y`);
    const rb = refConvBackward(x, c.x, w, wShape(c), r, refOpts(c));
    expectClose(got.dx, rb.dx, TOL, `F(${M}) chunked: dx`);
    expectClose(got.dw, rb.dw, TOL, `F(${M}) chunked: dw`);
  }
});

test('Winograd conv: gradients match central differences of the op itself and of the reference', async () => {
  // the op is linear in x and in w, so central differences of its float32 forward are exact up to
  // rounding; a large step keeps that rounding (~1e-7 |L| / eps) well below the tolerance
  const c: Case = { x: [2, 3, 5, 6], cout: 4, pad: [1, 1, 1, 1], bias: true };
  for (const M of [2, 4] as const) {
    conv2dTuning.winograd = true;
    winogradTuning.M = M;
    const x = randn(numel(c.x), rng);
    const w = randn(numel(wShape(c)), rng);
    const b = randn(c.cout, rng);
    const r = randn(numel([2, 4, 5, 6]), rng);
    const { dx, dw } = await rk.tidyAsync(async () => {
      const xt = rk.tensor(x, c.x).requireGrad();
      const wt = rk.tensor(w, wShape(c)).requireGrad();
      const y = rk.conv2d(xt, wt, rk.tensor(b, [c.cout]), { padding: 1 });
      rk.sum(rk.mul(y, rk.tensor(r, y.shape))).backward();
      const out = { dx: await read64(xt.grad!), dw: await read64(wt.grad!) };
      xt.grad!.dispose();
      wt.grad!.dispose();
      return out;
    });
    const lossGpu = async (xv: Float64Array, wv: Float64Array) =>
      rk.tidyAsync(async () => {
        const y = rk.conv2d(rk.tensor(xv, c.x), rk.tensor(wv, wShape(c)), rk.tensor(b, [c.cout]), { padding: 1 });
        return (await read64(rk.sum(rk.mul(y, rk.tensor(r, y.shape)))))[0];
      });
    const eps = 0.25;
    const fdX = new Float64Array(x.length);
    for (let i = 0; i < x.length; i++) {
      const p = Float64Array.from(x);
      const m = Float64Array.from(x);
      p[i] += eps;
      m[i] -= eps;
      fdX[i] = ((await lossGpu(p, w)) - (await lossGpu(m, w))) / (2 * eps);
    }
    expectClose(dx, fdX, 1e-4, `F(${M}) dx (Winograd backward-data) vs central differences of the Winograd forward`);
    const fdW = new Float64Array(w.length);
    for (let i = 0; i < w.length; i++) {
      const p = Float64Array.from(w);
      const m = Float64Array.from(w);
      p[i] += eps;
      m[i] -= eps;
      fdW[i] = ((await lossGpu(x, p)) - (await lossGpu(x, m))) / (2 * eps);
    }
    expectClose(dw, fdW, 1e-4, `F(${M}) dw (Winograd backward-weight) vs central differences of the Winograd forward`);
    const loss = (xv: Float64Array, wv: Float64Array) => {
      const y = refConv(xv, c.x, wv, wShape(c), b, refOpts(c)).y;
      let s = 0;
      for (let i = 0; i < y.length; i++) s += r[i] * y[i];
      return s;
    };
    expectClose(dx, numericGrad((v) => loss(v, w), x), 1e-4, `F(${M}) dx vs central differences of the reference`);
    expectClose(dw, numericGrad((v) => loss(x, v), w), 1e-4, `F(${M}) dw vs central differences of the reference`);
  }
});

test('Winograd error on ResNet-18 shapes (64 ch 28 px, 256 ch 7 px, 512 ch 4 px) stays within the bound', async () => {
  const shapes: Case[] = [
    { x: [1, 64, 28, 28], cout: 64, pad: [1, 1, 1, 1], bias: false },
    { x: [1, 256, 7, 7], cout: 256, pad: [1, 1, 1, 1], bias: false },
    { x: [2, 512, 4, 4], cout: 512, pad: [1, 1, 1, 1], bias: false },
  ];
  for (const c of shapes) {
    const x = randn(numel(c.x), rng);
    const w = randn(numel(wShape(c)), rng, Math.sqrt(2 / (9 * c.x[1]))); // Kaiming scale, as in the models
    const ref = refConv(x, c.x, w, wShape(c), null, refOpts(c));
    const r = randn(ref.y.length, rng);
    const rb = refConvBackward(x, c.x, w, wShape(c), r, refOpts(c));
    for (const M of [2, 4] as const) {
      conv2dTuning.winograd = true;
      winogradTuning.M = M;
      const got = await runGpu(c, x, w, null, r);
      for (const [what, g, want] of [['y', got.y, ref.y], ['dx', got.dx, rb.dx], ['dw', got.dw, rb.dw]] as const) {
        let maxErr = 0;
        let wantMax = 0;
        for (let i = 0; i < g.length; i++) {
          maxErr = Math.max(maxErr, Math.abs(g[i] - want[i]));
          wantMax = Math.max(wantMax, Math.abs(want[i]));
        }
        // measured (seed 17; WINOGRAD_ERR=1 prints them), rel. L2 / max error over max |value|,
        // y of 64 / 256 / 512 ch: F(2x2) 2.7e-7 / 4.9e-7 / 7.3e-7 and 3.8e-7 / 6.2e-7 / 7.9e-7;
        // F(4x4) 1.8e-6 / 2.5e-6 / 5.2e-6 and 5.7e-6 / 7.4e-6 / 1.5e-5 (dx, dw alike: see
        // bench/NOTES.md). The error grows with the products summed in the transformed domain,
        // where values are magnified by Bᵀ (up to 5) and Aᵀ (up to 8); the bounds leave a 3-4x
        // margin over the 512-channel F(4x4) values, and a wrong tap gives an error of ~1.
        if (process.env.WINOGRAD_ERR) console.log(`F(${M}) ${label(c)} ${what}: rel. L2 ${relL2(g, want).toExponential(2)}, max err / max |${what}| ${(maxErr / wantMax).toExponential(2)}`);
        expectClose(g, want, RESNET_TOL, `F(${M}) ${label(c)}: ${what}`);
        assert.ok(maxErr / wantMax < RESNET_MAX, `F(${M}) ${label(c)}: ${what}: max error ${maxErr.toExponential(2)} vs max |${what}| ${wantMax.toExponential(2)}`);
      }
    }
  }
});

test('the default picks Winograd only for stride-1, dilation-1, ungrouped 3x3 convs with >= 64 channels each side (weight gradient too)', async () => {
  if (!rk.getGpu().hasTimestamps) {
    console.log('conv-winograd: no timestamp queries on this adapter: kernel choice not checked');
    return;
  }
  const kernelsOf = async (xs: number[], cout: number, o: rk.Conv2dOptions & { k?: number }) => {
    rk.setProfiling(true);
    rk.tidy(() => rk.conv2d(rk.randn(xs), rk.randn([cout, xs[1] / (o.groups ?? 1), o.k ?? 3, o.k ?? 3]), null, o));
    const names = [...(await rk.kernelProfile()).keys()];
    rk.setProfiling(false);
    return names;
  };
  assert.ok((await kernelsOf([1, 64, 9, 9], 64, { padding: 1 })).includes('conv2d_winograd_gemm'), '64 -> 64 3x3 s1');
  for (const [xs, cout, o, what] of [
    [[1, 32, 9, 9], 64, { padding: 1 }, '32 input channels'],
    [[1, 64, 9, 9], 16, { padding: 1 }, '16 output channels'],
    [[1, 64, 9, 9], 64, { padding: 1, stride: 2 }, 'stride 2'],
    [[1, 64, 9, 9], 64, { padding: 2, dilation: 2 }, 'dilation 2'],
    [[1, 128, 9, 9], 128, { padding: 1, groups: 2 }, 'groups 2'],
    [[1, 64, 9, 9], 64, { padding: 2, k: 5 }, '5x5'],
  ] as [number[], number, rk.Conv2dOptions & { k?: number }, string][]) {
    const names = await kernelsOf(xs, cout, o);
    assert.ok(!names.includes('conv2d_winograd_gemm') && names.includes('conv2d_fwd'), `${what}: direct kernels (ran ${names.join(', ')})`);
  }
  conv2dTuning.winograd = false;
  assert.ok(!(await kernelsOf([1, 64, 9, 9], 64, { padding: 1 })).includes('conv2d_winograd_gemm'), 'conv2dTuning.winograd = false turns it off');
  conv2dTuning.winograd = undefined;
  // the weight gradient: the same rule
  const wgradKernels = async (ch: number) => {
    rk.setProfiling(true);
    await rk.tidyAsync(async () => {
      const w = rk.randn([ch, ch, 3, 3]).requireGrad();
      rk.sum(rk.conv2d(rk.randn([1, ch, 6, 6]), w, null, { padding: 1 })).backward();
      await w.grad!.toArray();
      w.grad!.dispose();
    });
    const names = [...(await rk.kernelProfile()).keys()];
    rk.setProfiling(false);
    return names;
  };
  assert.ok((await wgradKernels(64)).includes('conv2d_winograd_dw'), '64 -> 64: Winograd weight gradient');
  const w32 = await wgradKernels(32);
  assert.ok(!w32.includes('conv2d_winograd_dw') && w32.includes('conv2d_wgrad'), `32 -> 32: direct weight gradient (ran ${w32.join(', ')})`);
});

test("training keeps the forward's input transform for the weight gradient (keepV): one input transform fewer, the same gradients", async () => {
  if (!rk.getGpu().hasTimestamps) {
    console.log('conv-winograd: no timestamp queries on this adapter: kept V not checked by kernel count');
    return;
  }
  const c: Case = { x: [2, 64, 8, 8], cout: 64, pad: [1, 1, 1, 1], bias: false };
  const x = randn(numel(c.x), rng);
  const w = randn(numel(wShape(c)), rng, 0.05);
  const r = randn(2 * 64 * 64, rng);
  const rb = refConvBackward(x, c.x, w, wShape(c), r, refOpts(c));
  for (const keepV of [true, false]) {
    winogradTuning.keepV = keepV;
    rk.setProfiling(true);
    const got = await runGpu(c, x, w, null, r);
    const inputs = (await rk.kernelProfile()).get('conv2d_winograd_input')?.calls;
    rk.setProfiling(false);
    assert.is(inputs, keepV ? 2 : 3, `keepV ${keepV}: input transforms (forward, backward-data${keepV ? '' : ', weight gradient'})`);
    expectClose(got.dx, rb.dx, RESNET_TOL, `keepV ${keepV}: dx`);
    expectClose(got.dw, rb.dw, RESNET_TOL, `keepV ${keepV}: dw`);
  }
});

test('Winograd conv releases its intermediates', async () => {
  conv2dTuning.winograd = true;
  const c: Case = { x: [2, 6, 9, 9], cout: 5, pad: [1, 1, 1, 1], bias: true };
  const x = randn(numel(c.x), rng);
  const w = randn(numel(wShape(c)), rng);
  const b = randn(c.cout, rng);
  const r = randn(2 * 5 * 81, rng);
  await runGpu(c, x, w, b, r);
  await rk.sync();
  const before = rk.memoryStats();
  await runGpu(c, x, w, b, r);
  await rk.sync();
  const after = rk.memoryStats();
  assert.is(after.liveBuffers, before.liveBuffers, 'live buffers unchanged');
  assert.is(after.liveBytes, before.liveBytes, 'live bytes unchanged');
});

test.run();

// conv2d vs the float64 reference (test/reference/conv.ts): forward and the three gradients (through
// autograd: loss = sum(conv(x, w, b) * r)) over a sampled grid that covers every kernel size
// (1, 3, 5, 7, non-square), stride (1, 2, per axis), padding (0, 1, 3, asymmetric per side),
// dilation (1, 2), groups (1, 2, depthwise, depthwise x2), odd sizes (7x9, 28x28, 57x57), batch 1
// and 8, with and without bias; central differences on tiny shapes; first-layer gradients; errors.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuInit, read64, expectClose, rk } from './helpers.ts';
import { conv2d as refConv, conv2dBackward as refConvBackward, type Conv2dOptions as RefOptions } from './reference/conv.ts';
import { numericGrad, randn, seededRandom } from './reference/gradcheck.ts';
import { conv2dTuning } from '../engine/ops/conv.ts';

const rng = seededRandom(Number(process.env.TEST_SEED ?? 11));
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);
const dot = (r: ArrayLike<number>, y: ArrayLike<number>) => {
  let s = 0;
  for (let i = 0; i < y.length; i++) s += r[i] * y[i];
  return s;
};

interface Case {
  x: number[]; // [N, Cin, H, W]
  cout: number;
  k: [number, number];
  stride: [number, number];
  pad: [number, number, number, number]; // top, bottom, left, right
  dil: [number, number];
  groups: number;
  bias: boolean;
}

const refOpts = (c: Case): RefOptions => ({ stride: c.stride, padding: c.pad, dilation: c.dil, groups: c.groups });
const wShape = (c: Case) => [c.cout, c.x[1] / c.groups, c.k[0], c.k[1]];
const label = (c: Case) =>
  `x[${c.x}] -> ${c.cout} k${c.k.join('x')} s${c.stride.join(',')} p${c.pad.join(',')} d${c.dil.join(',')} g${c.groups}${c.bias ? ' +bias' : ''}`;

/** GPU forward and gradients of sum(conv(x, w, b) * r); `need` picks which inputs require grad. */
async function runGpu(c: Case, x: Float64Array, w: Float64Array, b: Float64Array | null, r: (n: number) => Float64Array, need = { x: true, w: true, b: true }) {
  return rk.tidyAsync(async () => {
    const xt = rk.tensor(x, c.x);
    const wt = rk.tensor(w, wShape(c));
    const bt = b ? rk.tensor(b, [c.cout]) : null;
    if (need.x) xt.requireGrad();
    if (need.w) wt.requireGrad();
    if (bt && need.b) bt.requireGrad();
    const y = rk.conv2d(xt, wt, bt, { stride: c.stride, padding: c.pad, dilation: c.dil, groups: c.groups });
    const rr = r(y.size);
    const loss = rk.sum(rk.mul(y, rk.tensor(rr, y.shape)));
    loss.backward();
    const out = {
      y: await read64(y),
      shape: [...y.shape],
      r: rr,
      dx: xt.grad ? await read64(xt.grad) : null,
      dw: wt.grad ? await read64(wt.grad) : null,
      db: bt?.grad ? await read64(bt.grad) : null,
    };
    for (const t of [xt, wt, bt]) t?.grad?.dispose();
    return out;
  });
}

// The grid, sampled: every value of every parameter appears, with the costly combinations spread out.
const GRID: Case[] = [
  { x: [2, 6, 7, 9], cout: 5, k: [1, 1], stride: [1, 1], pad: [0, 0, 0, 0], dil: [1, 1], groups: 1, bias: true },
  { x: [1, 8, 9, 12], cout: 12, k: [1, 1], stride: [2, 2], pad: [0, 0, 0, 0], dil: [1, 1], groups: 1, bias: false },
  { x: [8, 5, 28, 28], cout: 9, k: [3, 3], stride: [1, 1], pad: [1, 1, 1, 1], dil: [1, 1], groups: 1, bias: true },
  { x: [1, 4, 57, 57], cout: 6, k: [3, 3], stride: [2, 2], pad: [1, 2, 0, 3], dil: [1, 1], groups: 1, bias: false },
  { x: [2, 3, 11, 10], cout: 4, k: [5, 5], stride: [1, 1], pad: [3, 3, 3, 3], dil: [2, 2], groups: 1, bias: true },
  { x: [1, 3, 23, 19], cout: 8, k: [7, 7], stride: [2, 2], pad: [3, 3, 3, 3], dil: [1, 1], groups: 1, bias: true },
  { x: [2, 6, 9, 7], cout: 8, k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1], dil: [1, 1], groups: 2, bias: true },
  { x: [2, 6, 13, 11], cout: 6, k: [3, 3], stride: [1, 1], pad: [1, 1, 1, 1], dil: [1, 1], groups: 6, bias: true },
  { x: [1, 5, 12, 12], cout: 5, k: [3, 3], stride: [2, 2], pad: [0, 1, 2, 0], dil: [1, 1], groups: 5, bias: false },
  { x: [1, 4, 11, 13], cout: 4, k: [3, 3], stride: [2, 1], pad: [2, 2, 2, 2], dil: [2, 2], groups: 4, bias: true },
  { x: [1, 4, 13, 15], cout: 6, k: [3, 5], stride: [2, 1], pad: [0, 2, 1, 3], dil: [1, 2], groups: 2, bias: true },
  { x: [2, 3, 8, 9], cout: 6, k: [3, 3], stride: [1, 1], pad: [0, 0, 0, 0], dil: [1, 1], groups: 3, bias: false },
  { x: [8, 16, 14, 14], cout: 32, k: [3, 3], stride: [1, 1], pad: [1, 1, 1, 1], dil: [1, 1], groups: 1, bias: true },
  { x: [2, 8, 14, 14], cout: 12, k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1], dil: [1, 1], groups: 1, bias: false },
  { x: [1, 7, 7, 9], cout: 9, k: [1, 1], stride: [1, 1], pad: [1, 0, 2, 1], dil: [1, 1], groups: 1, bias: true },
  // depthwise with rows of whole vec4s (vec4 loads) and without, both wide enough for 16-column tiles
  { x: [2, 8, 20, 24], cout: 8, k: [3, 3], stride: [1, 1], pad: [1, 1, 1, 1], dil: [1, 1], groups: 8, bias: true },
  { x: [1, 3, 17, 19], cout: 3, k: [3, 3], stride: [1, 1], pad: [1, 1, 2, 0], dil: [1, 1], groups: 3, bias: false },
  // depthwise row strips: several strips and row chunks per plane (vec4 rows; scalar rows, stride 2, a partial last strip)
  { x: [2, 4, 40, 72], cout: 4, k: [3, 3], stride: [1, 1], pad: [1, 1, 1, 1], dil: [1, 1], groups: 4, bias: true },
  { x: [1, 3, 33, 70], cout: 3, k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1], dil: [1, 1], groups: 3, bias: false },
  // depthwise "same" convs on planes of whole vec4s but rows that are not: row groups (2 rows of 14 or 10, 4 rows of 7)
  { x: [2, 6, 14, 14], cout: 6, k: [3, 3], stride: [1, 1], pad: [1, 1, 1, 1], dil: [1, 1], groups: 6, bias: true },
  { x: [1, 4, 12, 10], cout: 4, k: [3, 3], stride: [1, 1], pad: [1, 1, 1, 1], dil: [1, 1], groups: 4, bias: false },
  { x: [1, 3, 8, 7], cout: 3, k: [5, 5], stride: [1, 1], pad: [2, 2, 2, 2], dil: [1, 1], groups: 3, bias: true },
  // depthwise on small planes whose rows are not whole vec4s: 4 planes of 7x7 per lane (stride 1 and 2), 1 plane of 2x2
  { x: [2, 8, 7, 7], cout: 8, k: [3, 3], stride: [1, 1], pad: [1, 1, 1, 1], dil: [1, 1], groups: 8, bias: true },
  { x: [1, 4, 7, 7], cout: 4, k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1], dil: [1, 1], groups: 4, bias: false },
  { x: [3, 4, 2, 2], cout: 4, k: [3, 3], stride: [1, 1], pad: [1, 1, 1, 1], dil: [1, 1], groups: 4, bias: true },
  // small planes whose rows are whole vec4s (4 px, MobileNet-V2 at a 28 px input): one plane per lane, stride 1 and 2
  { x: [2, 8, 4, 4], cout: 8, k: [3, 3], stride: [1, 1], pad: [1, 1, 1, 1], dil: [1, 1], groups: 8, bias: true },
  { x: [1, 12, 4, 4], cout: 12, k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1], dil: [1, 1], groups: 12, bias: false },
  { x: [2, 3, 4, 8], cout: 3, k: [3, 3], stride: [1, 1], pad: [1, 1, 1, 1], dil: [1, 1], groups: 3, bias: true },
  // 2 px planes of 4 images per lane in the weight gradient (4 px: 2 images, above)
  { x: [4, 8, 2, 2], cout: 8, k: [3, 3], stride: [1, 1], pad: [1, 1, 1, 1], dil: [1, 1], groups: 8, bias: false },
  // 1x1 stride 2 with rows of whole vec4s (forward on the matmul kernel; backward-data as a flat
  // GEMM, then spread out), and with a bias (forward on the conv kernel)
  { x: [2, 8, 10, 16], cout: 12, k: [1, 1], stride: [2, 2], pad: [0, 0, 0, 0], dil: [1, 1], groups: 1, bias: false },
  { x: [1, 4, 9, 8], cout: 8, k: [1, 1], stride: [2, 2], pad: [0, 0, 0, 0], dil: [1, 1], groups: 1, bias: true },
  // wide enough for the subgroup-shared weight-gradient tiles (CinG a multiple of 8 or 32)
  { x: [2, 32, 6, 8], cout: 20, k: [1, 1], stride: [1, 1], pad: [0, 0, 0, 0], dil: [1, 1], groups: 1, bias: false },
  { x: [2, 16, 10, 10], cout: 8, k: [3, 3], stride: [1, 1], pad: [1, 1, 1, 1], dil: [1, 1], groups: 2, bias: true },
  // stride 2 with >= 64 output channels per group and >= 7x7 outputs: the subgroup's lanes share a
  // 7-row pixel tile (4x7x8: 72 channels leave spare lanes, partial tiles both ways; 8x7x4 at 7
  // columns, grouped); the weight gradient's 32-channel tiles (72 = 2 full + 1 partial block)
  { x: [2, 8, 15, 17], cout: 72, k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1], dil: [1, 1], groups: 1, bias: true },
  { x: [1, 8, 13, 14], cout: 128, k: [3, 3], stride: [2, 2], pad: [1, 0, 1, 1], dil: [1, 1], groups: 2, bias: false },
  // ... and its backward-data phases (64 input channels: the phases' output channels), odd sizes
  { x: [1, 64, 17, 15], cout: 8, k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1], dil: [1, 1], groups: 1, bias: false },
  // stride 2 with < 7 output rows or columns: 2 pixel tiles x 4 channel blocks per subgroup
  // (spare channel lanes, an odd tile count whose last pair is half empty, a lone tile) and the
  // backward-data phases of one with 32 input channels
  { x: [3, 16, 9, 7], cout: 40, k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1], dil: [1, 1], groups: 1, bias: true },
  { x: [1, 8, 7, 7], cout: 32, k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1], dil: [1, 1], groups: 1, bias: false },
  { x: [2, 32, 7, 9], cout: 8, k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1], dil: [1, 1], groups: 1, bias: false },
  // stride-1 3x3 with >= 32 output channels: 2 tiles x 4 blocks (> 14 rows, spare lanes) and
  // one 8x7 tile per subgroup (backward-data: 32 input channels)
  { x: [1, 8, 16, 17], cout: 36, k: [3, 3], stride: [1, 1], pad: [1, 1, 1, 1], dil: [1, 1], groups: 1, bias: true },
  { x: [2, 32, 9, 8], cout: 4, k: [3, 3], stride: [1, 1], pad: [1, 1, 1, 1], dil: [1, 1], groups: 1, bias: false },
  // 1x1 stride 2 whose subsampled rows are not whole vec4s (7 and 6 columns): channel-block
  // weight-gradient tiles (32 input channels shared 4 per lane; 40 outputs = 32 + a partial 8)
  { x: [2, 32, 14, 14], cout: 40, k: [1, 1], stride: [2, 2], pad: [0, 0, 0, 0], dil: [1, 1], groups: 1, bias: false },
  { x: [1, 32, 12, 11], cout: 16, k: [1, 1], stride: [2, 2], pad: [0, 0, 0, 0], dil: [1, 1], groups: 1, bias: true },
];

test.before(gpuInit);
test.after.each(() => {
  conv2dTuning.subgroups = undefined;
  conv2dTuning.tile = undefined;
  conv2dTuning.s2Phases = undefined;
});

/** The forward kernel shares weight loads across a subgroup where the adapter allows; test both paths. */
function kernelPaths(): { name: string; subgroups: boolean | number }[] {
  const S = rk.getGpu().subgroupSize;
  // kernels generated for 4 lanes (SwiftShader's size) run correctly inside larger real subgroups
  // (not again in npm test's second, default-limits pass: the kernels are the same)
  const four = S > 4 && S % 4 === 0 && rk.getGpu().limitsMode === 'adapter' ? [{ name: 'subgroup path generated for 4 lanes', subgroups: 4 }] : [];
  if (S > 0) return [{ name: `subgroup path (${S} lanes)`, subgroups: true }, ...four, { name: 'plain path', subgroups: false }];
  console.log('conv: this adapter has no fixed-size subgroups: only the plain kernel path is tested');
  return [{ name: 'plain path', subgroups: false }];
}

test('conv2d forward matches the reference over the grid (rel. L2 < 1e-5)', async () => {
  for (const path of kernelPaths()) for (const c of GRID) {
    conv2dTuning.subgroups = path.subgroups;
    const x = randn(numel(c.x), rng);
    const w = randn(numel(wShape(c)), rng);
    const b = c.bias ? randn(c.cout, rng) : null;
    const ref = refConv(x, c.x, w, wShape(c), b, refOpts(c));
    const y = rk.tidy(() => rk.conv2d(rk.tensor(x, c.x), rk.tensor(w, wShape(c)), b ? rk.tensor(b, [c.cout]) : null, { stride: c.stride, padding: c.pad, dilation: c.dil, groups: c.groups }));
    assert.equal([...y.shape], ref.shape, `${label(c)}: shape`);
    expectClose(await read64(y), ref.y, 1e-5, `${label(c)}, ${path.name}: y`);
    y.dispose();
  }
});

// The tile pickTile gives SwiftShader at stride 1 (a page-only choice, so forced here): forward
// and backward-data (the same kernel) on stride-1 grid shapes, edges not multiples of the tile.
test('conv2d with the SwiftShader 4x4x16 tile matches the reference (rel. L2 < 1e-4)', async () => {
  const S = rk.getGpu().subgroupSize;
  for (const subgroups of S > 0 && S % 4 === 0 ? [4, false] : [false]) for (const c of GRID.filter((g) => g.stride[0] === 1 && g.groups === 1 && g.k[0] === 3)) {
    conv2dTuning.subgroups = subgroups;
    conv2dTuning.tile = { TM: 4, R: 4, TN: 16 };
    const x = randn(numel(c.x), rng);
    const w = randn(numel(wShape(c)), rng);
    const b = c.bias ? randn(c.cout, rng) : null;
    const got = await runGpu(c, x, w, b, (n) => randn(n, rng));
    const ref = refConvBackward(x, c.x, w, wShape(c), got.r, refOpts(c));
    expectClose(got.y, refConv(x, c.x, w, wShape(c), b, refOpts(c)).y, 1e-5, `${label(c)}, subgroups ${subgroups}: y`);
    expectClose(got.dx!, ref.dx, 1e-4, `${label(c)}, subgroups ${subgroups}: dx`);
  }
});

test('conv2d gradients match the reference analytic gradients over the grid (rel. L2 < 1e-4)', async () => {
  for (const path of kernelPaths()) for (const c of GRID) {
    conv2dTuning.subgroups = path.subgroups;
    const x = randn(numel(c.x), rng);
    const w = randn(numel(wShape(c)), rng);
    const b = c.bias ? randn(c.cout, rng) : null;
    const got = await runGpu(c, x, w, b, (n) => randn(n, rng));
    const ref = refConvBackward(x, c.x, w, wShape(c), got.r, refOpts(c));
    expectClose(got.dx!, ref.dx, 1e-4, `${label(c)}, ${path.name}: dx`);
    expectClose(got.dw!, ref.dw, 1e-4, `${label(c)}, ${path.name}: dw`);
    if (b) expectClose(got.db!, ref.db, 1e-4, `${label(c)}, ${path.name}: db`);
  }
});

// Stride-2 forwards as 4 stride-1 phase convs added into y (conv.ts, forwardPhases): the default on
// lavapipe for 3x3 stride-2 convs with >= 128 input and >= 32 output channels per group, forced
// here on every stride-2 grid shape of kernels up to 3x3 (asymmetric padding, groups, odd sizes,
// spare lanes) and every kernel path; and forced off, so the one-pass stride-2 kernel stays
// tested. A phase that overwrote y instead of adding, or read x from the wrong offset, fails.
test('conv2d stride-2 forward by stride phases (forced on and off) matches the reference (rel. L2 < 1e-5)', async () => {
  const cases = GRID.filter((c) => c.stride[0] === 2 && c.stride[1] === 2 && c.dil[0] === 1 && c.dil[1] === 1 && c.k[0] <= 3 && c.k[1] <= 3 && c.k[0] * c.k[1] > 1 && !(c.groups === c.x[1] && c.groups === c.cout));
  assert.ok(cases.length >= 8, `stride-2 cases: ${cases.length}`);
  for (const path of kernelPaths())
    for (const phases of [true, false])
      for (const c of cases) {
        conv2dTuning.subgroups = path.subgroups;
        conv2dTuning.s2Phases = phases;
        const x = randn(numel(c.x), rng);
        const w = randn(numel(wShape(c)), rng);
        const b = c.bias ? randn(c.cout, rng) : null;
        const y = rk.tidy(() => rk.conv2d(rk.tensor(x, c.x), rk.tensor(w, wShape(c)), b ? rk.tensor(b, [c.cout]) : null, { stride: c.stride, padding: c.pad, dilation: c.dil, groups: c.groups }));
        expectClose(await read64(y), refConv(x, c.x, w, wShape(c), b, refOpts(c)).y, 1e-5, `${label(c)}, ${path.name}, s2Phases ${phases}: y`);
        y.dispose();
      }
  conv2dTuning.s2Phases = undefined;
});

test('conv2d gradients match central differences of the reference on tiny shapes', async () => {
  const tiny: Case[] = [
    { x: [1, 2, 5, 4], cout: 4, k: [3, 3], stride: [2, 2], pad: [1, 0, 0, 2], dil: [1, 1], groups: 1, bias: true },
    { x: [2, 2, 4, 5], cout: 2, k: [2, 3], stride: [1, 1], pad: [0, 0, 0, 0], dil: [2, 1], groups: 2, bias: true },
    { x: [1, 3, 5, 5], cout: 3, k: [3, 3], stride: [1, 1], pad: [1, 1, 1, 1], dil: [1, 1], groups: 3, bias: false },
  ];
  for (const c of tiny) {
    const x = randn(numel(c.x), rng);
    const w = randn(numel(wShape(c)), rng);
    const b = c.bias ? randn(c.cout, rng) : null;
    const got = await runGpu(c, x, w, b, (n) => randn(n, rng));
    const loss = (xv: Float64Array, wv: Float64Array, bv: Float64Array | null) => dot(got.r, refConv(xv, c.x, wv, wShape(c), bv, refOpts(c)).y);
    expectClose(got.dx!, numericGrad((v) => loss(v, w, b), x), 1e-4, `${label(c)}: dx vs central differences`);
    expectClose(got.dw!, numericGrad((v) => loss(x, v, b), w), 1e-4, `${label(c)}: dw vs central differences`);
    if (b) expectClose(got.db!, numericGrad((v) => loss(x, w, v), b), 1e-4, `${label(c)}: db vs central differences`);
  }
});

test('conv2d backward computes only the gradients that are needed (first layer: no dx)', async () => {
  const c: Case = { x: [2, 4, 9, 9], cout: 8, k: [3, 3], stride: [1, 1], pad: [1, 1, 1, 1], dil: [1, 1], groups: 1, bias: true };
  const x = randn(numel(c.x), rng);
  const w = randn(numel(wShape(c)), rng);
  const b = randn(c.cout, rng);
  const profiled = rk.getGpu().hasTimestamps;
  if (profiled) rk.setProfiling(true);
  const wOnly = await runGpu(c, x, w, b, (n) => randn(n, rng), { x: false, w: true, b: true });
  const kernels = profiled ? [...(await rk.kernelProfile()).keys()] : [];
  if (profiled) rk.setProfiling(false);
  assert.is(wOnly.dx, null, 'x does not require grad: no dx');
  const ref = refConvBackward(x, c.x, w, wShape(c), wOnly.r, refOpts(c));
  expectClose(wOnly.dw!, ref.dw, 1e-4, 'dw (first layer)');
  expectClose(wOnly.db!, ref.db, 1e-4, 'db (first layer)');
  // forward + weight gradient only: one conv2d_fwd dispatch, none for a backward-data pass
  if (profiled) {
    assert.ok(kernels.includes('conv2d_wgrad'), `kernels run: ${kernels.join(', ')}`);
    const all = await (async () => {
      rk.setProfiling(true);
      await runGpu(c, x, w, b, (n) => randn(n, rng), { x: true, w: false, b: false });
      const p = await rk.kernelProfile();
      rk.setProfiling(false);
      return p;
    })();
    assert.ok(!all.has('conv2d_wgrad'), 'w does not require grad: no weight-gradient kernel');
    assert.is(all.get('conv2d_fwd')?.calls, 2, 'forward + backward-data');
  }
  const xOnly = await runGpu(c, x, w, b, (n) => randn(n, rng), { x: true, w: false, b: false });
  assert.is(xOnly.dw, null);
  assert.is(xOnly.db, null);
  expectClose(xOnly.dx!, refConvBackward(x, c.x, w, wShape(c), xOnly.r, refOpts(c)).dx, 1e-4, 'dx only');
});

test('conv2d releases its intermediates', async () => {
  const c: Case = { x: [2, 4, 10, 10], cout: 4, k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1], dil: [1, 1], groups: 1, bias: true };
  const x = randn(numel(c.x), rng);
  const w = randn(numel(wShape(c)), rng);
  const b = randn(c.cout, rng);
  await runGpu(c, x, w, b, (n) => randn(n, rng)); // warm up (pipelines, pool)
  await rk.sync();
  const before = rk.memoryStats();
  await runGpu(c, x, w, b, (n) => randn(n, rng));
  await rk.sync();
  const after = rk.memoryStats();
  assert.is(after.liveBuffers, before.liveBuffers, 'live buffers unchanged');
  assert.is(after.liveBytes, before.liveBytes, 'live bytes unchanged');
});

test('conv2d rejects bad parameters with errors naming conv2d and the values', () => {
  const x = rk.zeros([2, 6, 8, 8]);
  const w = rk.zeros([4, 3, 3, 3]);
  const throwsWith = (fn: () => unknown, re: RegExp, what: string) => {
    try {
      rk.tidy(() => void fn());
    } catch (e) {
      assert.match((e as Error).message, re, what);
      assert.match((e as Error).message, /conv2d/, `${what}: names conv2d`);
      return;
    }
    assert.unreachable(`${what}: did not throw`);
  };
  throwsWith(() => rk.conv2d(x, rk.zeros([4, 2, 3, 3]), null, { groups: 4 }), /groups 4.*6 input channels/, 'groups not dividing Cin');
  throwsWith(() => rk.conv2d(x, rk.zeros([5, 3, 3, 3]), null, { groups: 2 }), /groups 2.*5 output channels/, 'groups not dividing Cout');
  throwsWith(() => rk.conv2d(x, w), /weight \[4, 3, 3, 3\].*3 input channels.*has 6/, 'weight/input channel mismatch');
  throwsWith(() => rk.conv2d(x, rk.zeros([4, 6, 9, 3])), /kernel 9x3.*larger than the padded input 8x8/, 'kernel larger than input');
  throwsWith(() => rk.conv2d(x, rk.zeros([4, 6, 3, 3]), null, { dilation: 5, padding: 1 }), /extent 11x11.*padded input 10x10/, 'dilated kernel larger than input');
  throwsWith(() => rk.conv2d(x, w, null, { groups: 2, padding: -1 }), /padding.*non-negative.*-1/, 'negative padding');
  throwsWith(() => rk.conv2d(x, w, null, { groups: 2, padding: [0, 1, -2, 0] }), /padding.*-2/, 'negative padding per side');
  throwsWith(() => rk.conv2d(x, w, null, { groups: 2, stride: 0 }), /stride.*>= 1.*0/, 'zero stride');
  throwsWith(() => rk.conv2d(x, w, null, { groups: 2, stride: [1, 0] }), /stride.*\[1, 0\]/, 'zero stride per axis');
  throwsWith(() => rk.conv2d(x, w, null, { groups: 2, dilation: 0 }), /dilation.*0/, 'zero dilation');
  throwsWith(() => rk.conv2d(x, w, null, { groups: 0 }), /groups.*0/, 'zero groups');
  throwsWith(() => rk.conv2d(x, w, rk.zeros([3]), { groups: 2 }), /bias.*\[4\].*\[3\]/, 'bias shape');
  throwsWith(() => rk.conv2d(rk.zeros([6, 8, 8]), w, null, { groups: 2 }), /rank 4/, 'x rank');
  x.dispose();
  w.dispose();
});

test('conv2d output size follows PyTorch (floor) for every stride/padding/dilation mix', () => {
  const cases: [number[], number[], Parameters<typeof rk.conv2d>[3], number[]][] = [
    [[1, 1, 7, 9], [1, 1, 3, 3], { stride: 2 }, [3, 4]],
    [[1, 1, 7, 9], [1, 1, 3, 3], { stride: 2, padding: [1, 0, 2, 1] }, [3, 5]],
    [[1, 1, 10, 10], [1, 1, 3, 3], { dilation: 3, padding: 1 }, [6, 6]],
    [[1, 1, 5, 5], [1, 1, 1, 1], { stride: 3 }, [2, 2]],
    [[1, 1, 8, 6], [1, 1, 2, 4], { stride: [3, 1], padding: [1, 2] }, [3, 7]],
  ];
  for (const [xs, ws, o, hw] of cases) {
    const y = rk.tidy(() => rk.conv2d(rk.zeros(xs), rk.zeros(ws), null, o));
    assert.equal([...y.shape], [1, 1, ...hw], `x${xs} w${ws} ${JSON.stringify(o)}`);
    y.dispose();
  }
});

test.run();

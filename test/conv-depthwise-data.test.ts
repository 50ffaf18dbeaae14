// Backward-data of strided depthwise convs (engine/ops/conv-depthwise-data.ts: one gather kernel,
// strips or whole planes) against the float64 reference (test/reference/conv.ts), through
// autograd (loss = sum(conv(x, w) * r)), with the device's buffers poisoned (gpuInit): every
// layout the kernel picks (vec4 gy loads and vec4 stores, scalar rows, full-width row pairs, the
// whole-plane kernel), odd sizes (7, 13, 14, 28, 33 px), asymmetric padding, dilation, stride
// per axis and 3, and central differences on a tiny shape. Also the old stride-phase path
// (conv2dTuning.depthwise.phases) as a cross-check, since the bench compares against it, and the
// whole-plane kernel on planes over 64 px (y, dx, dw).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuInit, read64, expectClose, rk } from './helpers.ts';
import { conv2d as refConv, conv2dBackward as refConvBackward } from './reference/conv.ts';
import { numericGrad, randn, seededRandom } from './reference/gradcheck.ts';
import { conv2dTuning } from '../engine/ops/conv.ts';
import type { DwTuning } from '../engine/ops/conv-depthwise.ts';

const rng = seededRandom(Number(process.env.TEST_SEED ?? 17));
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

interface Case {
  x: [number, number, number, number];
  k: [number, number];
  stride: [number, number];
  pad: [number, number, number, number];
  dil?: [number, number];
}
const opts = (c: Case) => ({ stride: c.stride, padding: c.pad, dilation: c.dil ?? [1, 1], groups: c.x[1] });
const wShape = (c: Case) => [c.x[1], 1, c.k[0], c.k[1]];
const label = (c: Case) => `x[${c.x}] k${c.k.join('x')} s${c.stride.join(',')} p${c.pad.join(',')} d${(c.dil ?? [1, 1]).join(',')}`;

/** dx of sum(conv(x, w) * r) on the GPU, and r. */
async function gpuDx(c: Case, x: Float64Array, w: Float64Array): Promise<{ dx: Float64Array; r: Float64Array }> {
  return rk.tidyAsync(async () => {
    const xt = rk.tensor(x, c.x).requireGrad();
    const y = rk.conv2d(xt, rk.tensor(w, wShape(c)), null, opts(c));
    const r = randn(y.size, rng);
    rk.sum(rk.mul(y, rk.tensor(r, y.shape))).backward();
    const dx = await read64(xt.grad!);
    xt.grad!.dispose();
    return { dx, r };
  });
}

async function check(c: Case, tune?: DwTuning, what = '') {
  conv2dTuning.depthwise = tune;
  try {
    const x = randn(numel(c.x), rng);
    const w = randn(numel(wShape(c)), rng);
    const { dx, r } = await gpuDx(c, x, w);
    expectClose(dx, refConvBackward(x, c.x, w, wShape(c), r, opts(c)).dx, 1e-5, `${label(c)}${what}: dx`);
  } finally {
    conv2dTuning.depthwise = undefined;
  }
}

const CASES: Case[] = [
  // 56 -> 28 px: 8-column strips, gy as one aligned vec4 + a scalar per row, vec4 stores
  { x: [2, 3, 56, 56], k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] },
  // 28 -> 14 px: gy rows not whole vec4s (scalar loads), vec4 stores; several strips and row chunks
  { x: [2, 5, 28, 28], k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] },
  // 14 -> 7 px: a full-width strip, each step's 2 rows of 14 stored as 7 vec4s
  { x: [3, 6, 14, 14], k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] },
  // odd sizes: 13 and 33 x 70 (scalar stores, a partial last strip, a last step of one row)
  { x: [2, 3, 13, 13], k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] },
  // a full-width strip whose gy rows are whole vec4s (15 -> 8 px: vec4 gy loads, scalar stores)
  { x: [2, 3, 9, 15], k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] },
  { x: [1, 3, 33, 70], k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] },
  // vec4 stores with an odd row count (the last step's second row is past the plane)
  { x: [1, 2, 27, 36], k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] },
  // small planes: whole-plane kernel (4 planes of 7x7, 1 plane of 4x4, 4 planes of 2x2), and 7x7 with 3 planes (strips)
  { x: [2, 8, 7, 7], k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] },
  { x: [2, 12, 4, 4], k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] },
  { x: [3, 8, 2, 2], k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] },
  { x: [2, 3, 7, 7], k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] },
  // no padding, asymmetric padding, stride per axis, dilation, stride 3, 5x5 and 2x3 kernels
  { x: [1, 4, 16, 24], k: [3, 3], stride: [2, 2], pad: [0, 0, 0, 0] },
  { x: [1, 5, 12, 12], k: [3, 3], stride: [2, 2], pad: [0, 1, 2, 0] },
  { x: [2, 4, 11, 13], k: [3, 3], stride: [2, 1], pad: [2, 2, 2, 2], dil: [2, 2] },
  { x: [1, 3, 10, 17], k: [3, 3], stride: [1, 2], pad: [1, 1, 1, 1] },
  { x: [1, 4, 20, 19], k: [3, 3], stride: [3, 3], pad: [1, 1, 1, 1] },
  { x: [2, 3, 23, 40], k: [5, 5], stride: [2, 2], pad: [2, 2, 2, 2] },
  { x: [1, 2, 9, 12], k: [2, 3], stride: [2, 2], pad: [0, 1, 1, 0], dil: [1, 2] },
];

test.before(gpuInit);

test('strided depthwise dx matches the float64 reference (rel. L2 < 1e-5), every layout', async () => {
  for (const c of CASES) await check(c);
});

test('strided depthwise dx with forced strip widths, row chunks and no plane kernel', async () => {
  const c: Case = { x: [2, 3, 28, 56], k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] };
  for (const t of [{ TM: 4 }, { TM: 16 }, { TM: 8, RC: 3 }, { WG: 8 }]) await check(c, t, ` ${JSON.stringify(t)}`);
  await check({ x: [2, 8, 7, 7], k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] }, { noGroups: true }, ' noGroups');
  await check({ x: [2, 4, 14, 14], k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] }, { TM: 8 }, ' TM 8');
});

test('the old stride-phase path (comparisons) still matches the reference', async () => {
  for (const c of [CASES[0], CASES[2], CASES[5]]) await check(c, { phases: true }, ' phases');
});

// planes over 64 px take the whole-plane kernel one at a time when rows are not whole vec4s but the
// planes are (conv-depthwise-planes.ts planeGroup): forward, dx and dw on such shapes, stride 1 and 2
test('depthwise on 8x14, 10x10 and 14x14 planes: y, dx and dw match the reference', async () => {
  for (const c of [
    { x: [2, 4, 8, 14], k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] },
    { x: [2, 4, 10, 10], k: [3, 3], stride: [1, 1], pad: [1, 1, 1, 1] },
    { x: [1, 5, 14, 14], k: [3, 3], stride: [1, 1], pad: [1, 1, 1, 1] },
  ] as Case[]) {
    const x = randn(numel(c.x), rng);
    const w = randn(numel(wShape(c)), rng);
    const got = await rk.tidyAsync(async () => {
      const xt = rk.tensor(x, c.x).requireGrad();
      const wt = rk.tensor(w, wShape(c)).requireGrad();
      const y = rk.conv2d(xt, wt, null, opts(c));
      const r = randn(y.size, rng);
      rk.sum(rk.mul(y, rk.tensor(r, y.shape))).backward();
      const out = { y: await read64(y), dx: await read64(xt.grad!), dw: await read64(wt.grad!), r };
      xt.grad!.dispose();
      wt.grad!.dispose();
      return out;
    });
    expectClose(got.y, refConv(x, c.x, w, wShape(c), null, opts(c)).y, 1e-5, `${label(c)}: y`);
    const ref = refConvBackward(x, c.x, w, wShape(c), got.r, opts(c));
    expectClose(got.dx, ref.dx, 1e-5, `${label(c)}: dx`);
    expectClose(got.dw, ref.dw, 1e-4, `${label(c)}: dw`);
  }
});

test('strided depthwise dx matches central differences on a tiny shape', async () => {
  const c: Case = { x: [1, 2, 7, 6], k: [3, 3], stride: [2, 2], pad: [1, 0, 1, 1] };
  const x = randn(numel(c.x), rng);
  const w = randn(numel(wShape(c)), rng);
  const { dx, r } = await gpuDx(c, x, w);
  const loss = (xv: Float64Array) => {
    const y = refConv(xv, c.x, w, wShape(c), null, opts(c)).y;
    let s = 0;
    for (let i = 0; i < y.length; i++) s += r[i] * y[i];
    return s;
  };
  expectClose(dx, numericGrad(loss, x), 1e-4, `${label(c)}: dx vs central differences`);
});

test('strided depthwise dx runs as one dispatch (no stride phases)', async () => {
  if (!rk.getGpu().hasTimestamps) return console.log('conv-depthwise-data: no timestamp queries: dispatch count not checked');
  const c: Case = { x: [1, 4, 28, 28], k: [3, 3], stride: [2, 2], pad: [1, 1, 1, 1] };
  const x = randn(numel(c.x), rng);
  const w = randn(numel(wShape(c)), rng);
  await gpuDx(c, x, w); // compile outside the profile
  rk.setProfiling(true);
  await gpuDx(c, x, w);
  const prof = await rk.kernelProfile();
  rk.setProfiling(false);
  assert.is(prof.get('conv2d_depthwise_data')?.calls, 1, `kernels: ${[...prof.keys()].join(', ')}`);
  assert.ok(!prof.has('conv2d_wpack'), 'no weight packing');
});

test.run();

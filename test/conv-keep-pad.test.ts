// conv2d's weight gradient from the forward's own padded copy of x (conv.ts, conv2dForwardKeepingPad)
// and from fewer, longer chunks of pixel tiles (conv-wgrad.ts): dx, dw and db vs the float64
// reference (test/reference/conv.ts) with the copy kept and not, on the narrow shapes of the
// small models (4-32 channels: no Winograd) and ones whose forward copy is larger than the weight
// gradient needs (more rows, longer rows) or smaller (grouped stride 2: the copy is enlarged), strided, dilated, grouped, 5x5 with asymmetric padding,
// 1x1 stride 2 on rows that are not whole vec4s; central differences on a tiny one; and that the
// kept copy saves one conv2d_pad dispatch. Buffers are poisoned (gpuInit): a stale or unwritten
// read fails.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuInit, read64, expectClose, rk } from './helpers.ts';
import { conv2d as refConv, conv2dBackward as refConvBackward, type Conv2dOptions as RefOptions } from './reference/conv.ts';
import { numericGrad, randn, seededRandom } from './reference/gradcheck.ts';
import { conv2dTuning, convGeometry, conv2dForwardKeepingPad } from '../engine/ops/conv.ts';
import { wgradPadExtent } from '../engine/ops/conv-wgrad.ts';

const rng = seededRandom(Number(process.env.TEST_SEED ?? 17));
const numel = (s: readonly number[]) => s.reduce((a, b) => a * b, 1);

interface Case {
  x: number[];
  cout: number;
  k: number;
  stride: number;
  pad: [number, number, number, number];
  dil: number;
  groups: number;
  bias: boolean;
}
const wShape = (c: Case) => [c.cout, c.x[1] / c.groups, c.k, c.k];
const refOpts = (c: Case): RefOptions => ({ stride: [c.stride, c.stride], padding: c.pad, dilation: [c.dil, c.dil], groups: c.groups });
const opts = (c: Case) => ({ stride: c.stride, padding: c.pad, dilation: c.dil, groups: c.groups });
const label = (c: Case) => `x[${c.x}] -> ${c.cout} k${c.k} s${c.stride} p${c.pad} d${c.dil} g${c.groups}${c.bias ? ' +bias' : ''}`;
const geom = (c: Case) => {
  const [pt, pb, pl, pr] = c.pad;
  return convGeometry(c.x, wShape(c), { sh: c.stride, sw: c.stride, pt, pb, pl, pr, dh: c.dil, dw: c.dil, groups: c.groups });
};

const CASES: Case[] = [
  // ResNet-18 at width 1/16 on 28 px: 28, 14, 7 and 4 px, stride 1 and 2, the 1x1 shortcut
  { x: [4, 4, 28, 28], cout: 4, k: 3, stride: 1, pad: [1, 1, 1, 1], dil: 1, groups: 1, bias: false },
  { x: [4, 4, 28, 28], cout: 8, k: 3, stride: 2, pad: [1, 1, 1, 1], dil: 1, groups: 1, bias: false },
  { x: [4, 8, 14, 14], cout: 16, k: 1, stride: 2, pad: [0, 0, 0, 0], dil: 1, groups: 1, bias: false },
  { x: [4, 16, 7, 7], cout: 16, k: 3, stride: 1, pad: [1, 1, 1, 1], dil: 1, groups: 1, bias: true },
  { x: [3, 32, 4, 4], cout: 32, k: 3, stride: 1, pad: [1, 1, 1, 1], dil: 1, groups: 1, bias: false },
  // odd sizes, asymmetric padding, dilation, groups, 5x5
  { x: [2, 3, 11, 13], cout: 6, k: 5, stride: 1, pad: [2, 1, 0, 3], dil: 1, groups: 1, bias: true },
  { x: [2, 6, 9, 10], cout: 4, k: 3, stride: 2, pad: [1, 1, 1, 1], dil: 1, groups: 2, bias: true },
  { x: [1, 4, 12, 9], cout: 5, k: 3, stride: 1, pad: [2, 2, 2, 2], dil: 2, groups: 1, bias: false },
  // many pixel tiles (many chunks) and a single chunk
  { x: [16, 4, 20, 20], cout: 4, k: 3, stride: 1, pad: [1, 1, 1, 1], dil: 1, groups: 1, bias: true },
  { x: [1, 5, 5, 6], cout: 3, k: 3, stride: 1, pad: [1, 1, 1, 1], dil: 1, groups: 1, bias: true },
];

async function grads(c: Case, x: Float64Array, w: Float64Array, b: Float64Array | null, r: Float64Array, needX = true) {
  return rk.tidyAsync(async () => {
    const xt = rk.tensor(x, c.x);
    const wt = rk.tensor(w, wShape(c)).requireGrad();
    const bt = b ? rk.tensor(b, [c.cout]).requireGrad() : null;
    if (needX) xt.requireGrad();
    const y = rk.conv2d(xt, wt, bt, opts(c));
    rk.sum(rk.mul(y, rk.tensor(r, y.shape))).backward();
    const out = { dx: xt.grad ? await read64(xt.grad) : null, dw: await read64(wt.grad!), db: bt ? await read64(bt.grad!) : null };
    for (const t of [xt, wt, bt]) t?.grad?.dispose();
    return out;
  });
}

test.before(gpuInit);
test.after.each(() => {
  conv2dTuning.keepPad = undefined;
  conv2dTuning.wgradMinTiles = undefined;
  conv2dTuning.subgroups = undefined;
});

test('every case runs the kept-copy path (the forward copy covers what the weight gradient reads), some with a larger copy', () => {
  let larger = 0;
  for (const c of CASES) {
    const g = geom(c);
    const need = wgradPadExtent(g);
    assert.ok(need, `${label(c)}: the weight gradient runs on conv2d_wgrad`);
    const [x, w] = [rk.zeros(c.x), rk.zeros(wShape(c))];
    const kept = conv2dForwardKeepingPad(x, w, null, g);
    assert.ok(kept, `${label(c)}: the forward keeps its padded x`);
    const [, , Hp, Wp4] = kept!.xp.shape;
    assert.ok(Hp >= need!.Hp && Wp4 >= need!.Wp4, `${label(c)}: kept ${Hp}x${Wp4 * 4} covers ${need!.Hp}x${need!.Wp4 * 4}`);
    if (Hp > need!.Hp || Wp4 > need!.Wp4) larger++;
    for (const t of [x, w, kept!.xp, kept!.y]) t.dispose();
  }
  assert.ok(larger >= 1, `cases whose forward copy is larger than the weight gradient's: ${larger}`);
});

test('dx, dw, db with the forward padded copy kept and not, long and short chunks, match the float64 reference (rel. 1e-4)', async () => {
  const S = rk.getGpu().subgroupSize;
  for (const subgroups of S > 0 ? [true, false] : [false])
    for (const [keepPad, minTiles] of [[true, undefined], [false, undefined], [true, 2]] as const)
      for (const c of CASES) {
        conv2dTuning.subgroups = subgroups;
        conv2dTuning.keepPad = keepPad ? undefined : false;
        conv2dTuning.wgradMinTiles = minTiles;
        const x = randn(numel(c.x), rng);
        const w = randn(numel(wShape(c)), rng);
        const b = c.bias ? randn(c.cout, rng) : null;
        const yShape = refConv(x, c.x, w, wShape(c), b, refOpts(c)).shape;
        const r = randn(numel(yShape), rng);
        const got = await grads(c, x, w, b, r);
        const ref = refConvBackward(x, c.x, w, wShape(c), r, refOpts(c));
        const what = `${label(c)}, subgroups ${subgroups}, keepPad ${keepPad}, minTiles ${minTiles ?? 'default'}`;
        expectClose(got.dx!, ref.dx, 1e-4, `${what}: dx`);
        expectClose(got.dw, ref.dw, 1e-4, `${what}: dw`);
        if (b) expectClose(got.db!, ref.db, 1e-4, `${what}: db`);
      }
});

test('dw from the kept copy matches central differences of the reference on a tiny shape', async () => {
  const c: Case = { x: [1, 2, 5, 6], cout: 3, k: 3, stride: 2, pad: [1, 0, 2, 1], dil: 1, groups: 1, bias: true };
  const probe = [rk.zeros(c.x), rk.zeros(wShape(c)), rk.zeros([c.cout])];
  const kept = conv2dForwardKeepingPad(probe[0], probe[1], probe[2], geom(c));
  assert.ok(kept, 'the kept-copy path');
  for (const t of [...probe, kept!.xp, kept!.y]) t.dispose();
  const x = randn(numel(c.x), rng);
  const w = randn(numel(wShape(c)), rng);
  const b = randn(c.cout, rng);
  const yShape = refConv(x, c.x, w, wShape(c), b, refOpts(c)).shape;
  const r = randn(numel(yShape), rng);
  const got = await grads(c, x, w, b, r);
  const loss = (wv: Float64Array) => {
    const y = refConv(x, c.x, wv, wShape(c), b, refOpts(c)).y;
    let s = 0;
    for (let i = 0; i < y.length; i++) s += r[i] * y[i];
    return s;
  };
  expectClose(got.dw, numericGrad(loss, w), 1e-4, `${label(c)}: dw vs central differences`);
});

test('the kept copy saves one conv2d_pad dispatch per conv (forward + weight gradient)', async () => {
  if (!rk.getGpu().hasTimestamps) {
    console.log('conv-keep-pad: no timestamp queries on this adapter: dispatch count not checked');
    return;
  }
  const c = CASES[3];
  const x = randn(numel(c.x), rng);
  const w = randn(numel(wShape(c)), rng);
  const r = randn(numel(refConv(x, c.x, w, wShape(c), null, refOpts(c)).shape), rng);
  const pads = async (keep: boolean) => {
    conv2dTuning.keepPad = keep ? undefined : false;
    rk.setProfiling(true);
    await rk.kernelProfile();
    await grads({ ...c, bias: false }, x, w, null, r, false);
    const p = await rk.kernelProfile();
    rk.setProfiling(false);
    return p.get('conv2d_pad')?.calls ?? 0;
  };
  const without = await pads(false);
  const withKept = await pads(true);
  assert.is(withKept, without - 1, `conv2d_pad dispatches: ${withKept} kept, ${without} not`);
});

test.run();

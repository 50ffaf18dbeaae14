// DenseNet's fused dense block (engine/ops/dense-block.ts, used by models/densenet.ts's
// DenseBlock) vs a float64 CPU reference built from the reference conv / batch norm and an
// explicit concatenation: training forward, running statistics, every parameter gradient and the
// input gradient (the reference backward is itself checked by central differences), eval forward,
// the per-layer path a forward hook selects, and errors. Plane sizes 4x4 (vec4 kernels) and 5x5
// (scalar kernels).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuInit, read64, expectClose, rk } from './helpers.ts';
import { conv2d as refConv, conv2dBackward as refConvBack } from './reference/conv.ts';
import { batchNorm2dTrain, batchNorm2dBackward, batchNorm2dEval, updateRunningStats } from './reference/norm.ts';
import { numericGrad, randn, randu, seededRandom } from './reference/gradcheck.ts';
import { DenseBlock } from '../models/densenet.ts';

const rng = seededRandom(Number(process.env.TEST_SEED ?? 17));
const EPS = 1e-5;

interface RefLayer {
  g1: Float64Array;
  b1: Float64Array;
  w1: Float64Array;
  g2: Float64Array;
  b2: Float64Array;
  w2: Float64Array;
  rm1: Float64Array;
  rv1: Float64Array;
  rm2: Float64Array;
  rv2: Float64Array;
}
interface Geo {
  N: number;
  C0: number;
  H: number;
  W: number;
  growth: number;
  mid: number;
}

/** Channels [start, start + len) of an NCHW array with C channels. */
function sliceC(x: Float64Array, N: number, C: number, HW: number, start: number, len: number): Float64Array {
  const out = new Float64Array(N * len * HW);
  for (let n = 0; n < N; n++) out.set(x.subarray((n * C + start) * HW, (n * C + start + len) * HW), n * len * HW);
  return out;
}
/** dst[:, start:start+len] += src (dst has C channels). */
function addIntoC(dst: Float64Array, src: Float64Array, N: number, C: number, HW: number, start: number, len: number): void {
  for (let n = 0; n < N; n++) for (let k = 0; k < len * HW; k++) dst[(n * C + start) * HW + k] += src[n * len * HW + k];
}
function concatC(a: Float64Array, ca: number, b: Float64Array, cb: number, N: number, HW: number): Float64Array {
  const out = new Float64Array(N * (ca + cb) * HW);
  for (let n = 0; n < N; n++) {
    out.set(a.subarray(n * ca * HW, (n + 1) * ca * HW), n * (ca + cb) * HW);
    out.set(b.subarray(n * cb * HW, (n + 1) * cb * HW), (n * (ca + cb) + ca) * HW);
  }
  return out;
}
const relu = (v: Float64Array) => v.map((z) => Math.max(z, 0));
const P1 = { stride: [1, 1] as [number, number], padding: [0, 0, 0, 0] as [number, number, number, number], dilation: [1, 1] as [number, number], groups: 1 };
const P3 = { ...P1, padding: [1, 1, 1, 1] as [number, number, number, number] };

/** float64 block: forward (training: batch statistics; eval: running statistics) and, given r = dL/dout, the backward. */
function refBlock(x: Float64Array, g: Geo, layers: RefLayer[], training: boolean, r: Float64Array | null) {
  const { N, H, W, growth, mid } = g;
  const HW = H * W;
  let feats = x;
  let C = g.C0;
  const tape: { feats: Float64Array; C: number; z1: Float64Array; a: Float64Array; h: Float64Array; z2: Float64Array; bb: Float64Array }[] = [];
  const stats: { m1: Float64Array; v1: Float64Array; m2: Float64Array; v2: Float64Array }[] = [];
  for (const l of layers) {
    const bn1 = training ? batchNorm2dTrain(feats, [N, C, H, W], l.g1, l.b1, EPS) : { y: batchNorm2dEval(feats, [N, C, H, W], l.rm1, l.rv1, l.g1, l.b1, EPS), mean: l.rm1, varUnbiased: l.rv1 };
    const a = relu(bn1.y);
    const h = refConv(a, [N, C, H, W], l.w1, [mid, C, 1, 1], null, P1).y;
    const bn2 = training ? batchNorm2dTrain(h, [N, mid, H, W], l.g2, l.b2, EPS) : { y: batchNorm2dEval(h, [N, mid, H, W], l.rm2, l.rv2, l.g2, l.b2, EPS), mean: l.rm2, varUnbiased: l.rv2 };
    const bb = relu(bn2.y);
    const o = refConv(bb, [N, mid, H, W], l.w2, [growth, mid, 3, 3], null, P3).y;
    tape.push({ feats, C, z1: bn1.y, a, h, z2: bn2.y, bb });
    stats.push({ m1: bn1.mean, v1: bn1.varUnbiased, m2: bn2.mean, v2: bn2.varUnbiased });
    feats = concatC(feats, C, o, growth, N, HW);
    C += growth;
  }
  if (!r) return { out: feats, stats, grads: null };
  const G = Float64Array.from(r);
  const grads = layers.map(() => ({}) as Record<'g1' | 'b1' | 'w1' | 'g2' | 'b2' | 'w2', Float64Array>);
  for (let i = layers.length - 1; i >= 0; i--) {
    const l = layers[i];
    const t = tape[i];
    const go = sliceC(G, N, C, HW, t.C, growth);
    const c2 = refConvBack(t.bb, [N, mid, H, W], l.w2, [growth, mid, 3, 3], go, P3);
    const dz2 = c2.dx.map((v, k) => (t.z2[k] > 0 ? v : 0));
    const n2 = batchNorm2dBackward(t.h, [N, mid, H, W], l.g2, dz2, EPS);
    const c1 = refConvBack(t.a, [N, t.C, H, W], l.w1, [mid, t.C, 1, 1], n2.dx, P1);
    const dz1 = c1.dx.map((v, k) => (t.z1[k] > 0 ? v : 0));
    const n1 = batchNorm2dBackward(t.feats, [N, t.C, H, W], l.g1, dz1, EPS);
    addIntoC(G, n1.dx, N, C, HW, 0, t.C);
    grads[i] = { g1: n1.dgamma, b1: n1.dbeta, w1: c1.dw, g2: n2.dgamma, b2: n2.dbeta, w2: c2.dw };
  }
  return { out: feats, stats, grads, dx: sliceC(G, N, C, HW, 0, g.C0) };
}

/** A DenseBlock module with random weights, random BN affine parameters and running stats; and the same as float64 arrays. */
async function makeBlock(g: Geo, L: number) {
  const blk = new DenseBlock(L, g.C0, g.growth, g.mid / g.growth, new rk.Rng(Math.floor(rng.uniform() * 1e9)));
  const ref: RefLayer[] = [];
  for (const l of blk.layers) {
    const set = (t: rk.Tensor, v: Float64Array): Float64Array => (rk.writeTensor(t, v), v);
    const c1 = l.norm1.weight!.size;
    ref.push({
      g1: set(l.norm1.weight!, randu(c1, rng, 0.5, 1.5)),
      b1: set(l.norm1.bias!, randn(c1, rng, 0.3)),
      w1: await read64(l.conv1.weight),
      g2: set(l.norm2.weight!, randu(g.mid, rng, 0.5, 1.5)),
      b2: set(l.norm2.bias!, randn(g.mid, rng, 0.3)),
      w2: await read64(l.conv2.weight),
      rm1: set(l.norm1.runningMean, randn(c1, rng, 0.2)),
      rv1: set(l.norm1.runningVar, randu(c1, rng, 0.5, 2)),
      rm2: set(l.norm2.runningMean, randn(g.mid, rng, 0.2)),
      rv2: set(l.norm2.runningVar, randu(g.mid, rng, 0.5, 2)),
    });
  }
  return { blk, ref };
}

test.before(gpuInit);

for (const [H, L] of [
  [4, 3],
  [5, 4],
] as const) {
  test(`training forward, running stats and every gradient vs float64 (${H}x${H} planes, ${L} layers)`, async () => {
    const g: Geo = { N: 3, C0: 5, H, W: H, growth: 3, mid: 6 };
    const { blk, ref } = await makeBlock(g, L);
    const Ct = g.C0 + L * g.growth;
    const HW = H * H;
    const x64 = randn(g.N * g.C0 * HW, rng);
    const r64 = randn(g.N * Ct * HW, rng);
    const want = refBlock(x64, g, ref, true, r64);
    const x = rk.tensor(x64, [g.N, g.C0, H, H]).requireGrad();
    const y = blk.call(x);
    assert.equal(y.shape, [g.N, Ct, H, H]);
    const loss = rk.sum(rk.mul(y, rk.tensor(r64, y.shape)));
    loss.backward();
    expectClose(await read64(y), want.out, 2e-5, 'block output');
    expectClose(await read64(x.grad!), want.dx!, 1e-4, 'dL/dx');
    for (const [i, l] of blk.layers.entries()) {
      const w = want.grads![i];
      const pairs: [string, rk.Tensor, Float64Array][] = [
        ['norm1.weight', l.norm1.weight!, w.g1],
        ['norm1.bias', l.norm1.bias!, w.b1],
        ['conv1.weight', l.conv1.weight, w.w1],
        ['norm2.weight', l.norm2.weight!, w.g2],
        ['norm2.bias', l.norm2.bias!, w.b2],
        ['conv2.weight', l.conv2.weight, w.w2],
      ];
      for (const [what, p, ref64] of pairs) expectClose(await read64(p.grad!), ref64, 1e-4, `layer ${i + 1} d${what}`);
      // PyTorch's running-stat rule (momentum 0.1, unbiased variance), one count per forward
      const s = want.stats[i];
      const u1 = updateRunningStats(ref[i].rm1, ref[i].rv1, s.m1, s.v1, 0.1);
      const u2 = updateRunningStats(ref[i].rm2, ref[i].rv2, s.m2, s.v2, 0.1);
      expectClose(await read64(l.norm1.runningMean), u1.runMean, 1e-5, `layer ${i + 1} norm1 running_mean`);
      expectClose(await read64(l.norm1.runningVar), u1.runVar, 1e-5, `layer ${i + 1} norm1 running_var`);
      expectClose(await read64(l.norm2.runningMean), u2.runMean, 1e-5, `layer ${i + 1} norm2 running_mean`);
      expectClose(await read64(l.norm2.runningVar), u2.runVar, 1e-5, `layer ${i + 1} norm2 running_var`);
      assert.is(l.norm1.numBatchesTracked, 1);
      assert.is(l.norm2.numBatchesTracked, 1);
    }
    for (const t of [x, y, loss]) t.dispose();
    blk.dispose();
  });
}

test('the float64 reference backward agrees with central differences (input and a norm1 weight)', () => {
  const g: Geo = { N: 2, C0: 2, H: 3, W: 3, growth: 2, mid: 4 };
  const L = 2;
  const lay = (cin: number): RefLayer => ({
    g1: randu(cin, rng, 0.5, 1.5),
    b1: randn(cin, rng, 0.3),
    w1: randn(g.mid * cin, rng, 0.5),
    g2: randu(g.mid, rng, 0.5, 1.5),
    b2: randn(g.mid, rng, 0.3),
    w2: randn(g.growth * g.mid * 9, rng, 0.3),
    rm1: new Float64Array(cin),
    rv1: new Float64Array(cin).fill(1),
    rm2: new Float64Array(g.mid),
    rv2: new Float64Array(g.mid).fill(1),
  });
  const layers = [lay(2), lay(4)];
  const x = randn(g.N * g.C0 * 9, rng);
  const r = randn(g.N * (g.C0 + L * g.growth) * 9, rng);
  const loss = (xx: Float64Array, ls: RefLayer[]) => refBlock(xx, g, ls, true, null).out.reduce((s, v, k) => s + v * r[k], 0);
  const an = refBlock(x, g, layers, true, r);
  expectClose(an.dx!, numericGrad((xx) => loss(xx, layers), x), 1e-5, 'reference dL/dx vs central differences');
  const fd = numericGrad((gg) => loss(x, [{ ...layers[0], g1: gg }, layers[1]]), layers[0].g1);
  expectClose(an.grads![0].g1, fd, 1e-5, 'reference dL/dnorm1.weight vs central differences');
});

test('a gradient whose storage is shared (a backward seed) is read, never accumulated into', async () => {
  const g: Geo = { N: 2, C0: 3, H: 4, W: 4, growth: 2, mid: 4 };
  const { blk, ref } = await makeBlock(g, 3);
  const x64 = randn(g.N * g.C0 * 16, rng);
  const r64 = randn(g.N * (g.C0 + 3 * g.growth) * 16, rng);
  const x = rk.tensor(x64, [g.N, g.C0, 4, 4]).requireGrad();
  const y = blk.call(x);
  const seed = rk.tensor(r64, y.shape);
  const seedBefore = await read64(seed);
  y.backward(seed); // the root's gradient is a view of seed's storage
  assert.equal(await read64(seed), seedBefore, 'the seed is unchanged');
  expectClose(await read64(x.grad!), refBlock(x64, g, ref, true, r64).dx!, 1e-4, 'dL/dx');
  for (const t of [x, y, seed]) t.dispose();
  blk.dispose();
});

test('eval forward uses the running statistics and leaves them alone', async () => {
  const g: Geo = { N: 2, C0: 4, H: 4, W: 4, growth: 2, mid: 4 };
  const { blk, ref } = await makeBlock(g, 3);
  blk.eval();
  const x64 = randn(g.N * g.C0 * 16, rng);
  const before = await read64(blk.layers[2].norm1.runningMean);
  const y = rk.noGrad(() => blk.call(rk.tensor(x64, [g.N, g.C0, 4, 4])));
  expectClose(await read64(y), refBlock(x64, g, ref, false, null).out, 2e-5, 'eval output');
  assert.equal(await read64(blk.layers[2].norm1.runningMean), before, 'running_mean unchanged');
  assert.is(blk.layers[0].norm1.numBatchesTracked, 0);
  y.dispose();
  blk.dispose();
});

test('a forward hook inside the block selects the per-layer path, with the same result', async () => {
  const g: Geo = { N: 2, C0: 3, H: 4, W: 4, growth: 2, mid: 4 };
  const { blk, ref } = await makeBlock(g, 2);
  let seen = 0;
  const off = blk.layers[1].conv2.registerForwardHook(() => void seen++);
  const x64 = randn(g.N * g.C0 * 16, rng);
  const y = blk.call(rk.tensor(x64, [g.N, g.C0, 4, 4]));
  assert.is(seen, 1, 'the hooked layer ran on its own');
  expectClose(await read64(y), refBlock(x64, g, ref, true, null).out, 2e-5, 'per-layer output');
  off();
  y.dispose();
  blk.dispose();
});

test('errors name the layer and the tensor at fault', () => {
  const blk = new DenseBlock(2, 4, 2, 2, new rk.Rng(1));
  const l = blk.layers[1];
  const args = (over: Partial<rk.DenseLayerArgs> = {}) =>
    blk.layers.map((m, i) => ({
      norm1: { ...m.norm1.nextCall() },
      norm2: m.norm2.nextCall(),
      norm1Weight: m.norm1.weight!,
      norm1Bias: m.norm1.bias!,
      conv1Weight: m.conv1.weight,
      norm2Weight: m.norm2.weight!,
      norm2Bias: m.norm2.bias!,
      conv2Weight: m.conv2.weight,
      ...(i === 1 ? over : {}),
    }));
  const x = rk.zeros([2, 4, 4, 4]);
  assert.throws(() => rk.denseBlock(x, args({ conv1Weight: blk.layers[0].conv1.weight })), /layer 2 \(6 input channels\): conv1 weight must be \[Cmid, 6, 1, 1\], got \[4, 4, 1, 1\]/);
  assert.throws(() => rk.denseBlock(x, args({ norm2Bias: l.norm1.bias! })), /layer 2 .*norm2.bias must be \[4\], got \[6\]/);
  assert.throws(() => rk.denseBlock(x, args({ norm1: { ...l.norm1.nextCall(), activation: 'relu6' } })), /layer 2 norm1 must have activation 'relu'/);
  assert.throws(() => rk.denseBlock(rk.zeros([2, 3, 4, 4]), args()), /layer 1 \(3 input channels\): conv1 weight/);
  x.dispose();
  blk.dispose();
});

test.run();

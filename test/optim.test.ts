// Optimizers (SGD, AdamW) vs PyTorch's update formulas in float64, LR schedules, clipGradNorm.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuInit, read64, expectClose, rk } from './helpers.ts';
import { seededRandom, randn, l2 } from './reference/gradcheck.ts';

await gpuInit();
const rng = seededRandom(1234);
const rngVec4 = seededRandom(4321);
// sizes that are not multiples of 4 (scalar kernels), then sizes that are (vec4 kernels), drawn from their own generator
const SHAPES = [[1], [7, 13], [3, 5, 2, 3], [1031], [4], [16, 9], [1028]];
const rngOf = (k: number) => (k < 4 ? rng : rngVec4);

interface SgdRef {
  momentum: number;
  dampening: number;
  nesterov: boolean;
  weightDecay: number;
}

/** torch.optim.SGD for one tensor, float64; lrs[t] and grads[t] per step. */
function sgdRef(p0: Float64Array, grads: Float64Array[], lrs: number[], o: SgdRef): Float64Array {
  const p = Float64Array.from(p0);
  let buf: Float64Array | null = null;
  grads.forEach((g, t) => {
    const d = g.map((gi, i) => gi + o.weightDecay * p[i]);
    if (o.momentum !== 0) {
      buf = buf === null ? Float64Array.from(d) : buf.map((b, i) => o.momentum * b + (1 - o.dampening) * d[i]);
      const b = buf;
      for (let i = 0; i < d.length; i++) d[i] = o.nesterov ? d[i] + o.momentum * b[i] : b[i];
    }
    for (let i = 0; i < p.length; i++) p[i] -= lrs[t] * d[i];
  });
  return p;
}

interface AdamRef {
  betas: [number, number];
  eps: number;
  weightDecay: number;
}

/** torch.optim.AdamW (amsgrad=False) for one tensor, float64. */
function adamwRef(p0: Float64Array, grads: Float64Array[], lrs: number[], o: AdamRef): Float64Array {
  const p = Float64Array.from(p0);
  const m = new Float64Array(p.length);
  const v = new Float64Array(p.length);
  const [b1, b2] = o.betas;
  grads.forEach((g, k) => {
    const t = k + 1;
    const lr = lrs[k];
    const bc1 = 1 - b1 ** t;
    const bc2 = 1 - b2 ** t;
    for (let i = 0; i < p.length; i++) {
      p[i] *= 1 - lr * o.weightDecay;
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const denom = Math.sqrt(v[i]) / Math.sqrt(bc2) + o.eps;
      p[i] -= (lr / bc1) * (m[i] / denom);
    }
  });
  return p;
}

const numel = (s: number[]): number => s.reduce((a, b) => a * b, 1);

/** Runs `steps` optimizer steps on fresh parameters with random gradients; returns GPU and start values. */
async function run(make: (ps: rk.Tensor[]) => rk.optim.Optimizer, steps: number, lrs: number[]) {
  const init = SHAPES.map((s, k) => randn(numel(s), rngOf(k)));
  const grads = SHAPES.map((s, k) => Array.from({ length: steps }, () => randn(numel(s), rngOf(k))));
  const params = SHAPES.map((s, k) => rk.keep(rk.tensor(Float32Array.from(init[k]), s)));
  const opt = make(params);
  for (let t = 0; t < steps; t++) {
    opt.lr = lrs[t];
    params.forEach((p, k) => (p.grad = rk.keep(rk.tensor(Float32Array.from(grads[k][t]), p.shape))));
    opt.step();
    opt.zeroGrad();
  }
  const got = await Promise.all(params.map(read64));
  opt.dispose();
  params.forEach((p) => p.dispose());
  // float64 reference from the float32-rounded inputs
  const f = (a: Float64Array) => Float64Array.from(Float32Array.from(a));
  return { got, init: init.map(f), grads: grads.map((gs) => gs.map(f)) };
}

const sgdCases: [string, SgdRef][] = [
  ['plain', { momentum: 0, dampening: 0, nesterov: false, weightDecay: 0 }],
  ['weight decay', { momentum: 0, dampening: 0, nesterov: false, weightDecay: 0.1 }],
  ['momentum + dampening', { momentum: 0.9, dampening: 0.3, nesterov: false, weightDecay: 0 }],
  ['nesterov + weight decay', { momentum: 0.8, dampening: 0, nesterov: true, weightDecay: 0.05 }],
];

for (const [name, o] of sgdCases)
  for (const steps of [1, 5])
    test(`SGD ${name}, ${steps} step(s) matches torch`, async () => {
      const lrs = Array.from({ length: steps }, (_, t) => 0.1 / (1 + t));
      const r = await run((ps) => new rk.optim.SGD(ps, { lr: 1, ...o }), steps, lrs);
      r.got.forEach((g, k) =>
        expectClose(
          g,
          sgdRef(
            r.init[k],
            r.grads[k].map((x) => x),
            lrs,
            o,
          ),
          2e-6,
          `SGD ${name} param ${k}`,
        ),
      );
    });

const adamCases: [string, AdamRef][] = [
  ['defaults', { betas: [0.9, 0.999], eps: 1e-8, weightDecay: 1e-2 }],
  ['no decay, large eps', { betas: [0.8, 0.95], eps: 1e-3, weightDecay: 0 }],
  ['strong decay', { betas: [0.5, 0.9], eps: 1e-6, weightDecay: 0.3 }],
];

for (const [name, o] of adamCases)
  for (const steps of [1, 6])
    test(`AdamW ${name}, ${steps} step(s) matches torch (bias correction, decoupled decay)`, async () => {
      const lrs = Array.from({ length: steps }, (_, t) => 0.01 * (t + 1));
      const r = await run((ps) => new rk.optim.AdamW(ps, { lr: 1, betas: o.betas, eps: o.eps, weightDecay: o.weightDecay }), steps, lrs);
      r.got.forEach((g, k) => expectClose(g, adamwRef(r.init[k], r.grads[k], lrs, o), 2e-6, `AdamW ${name} param ${k}`));
    });

// Parameter groups: even-numbered params in a group with no weight decay and half the LR, odd ones in the default group.
const GROUPED = { lrScale: 0.5, weightDecay: 0 };
const groups = (ps: rk.Tensor[]): rk.optim.ParamGroup[] => [{ params: ps.filter((_, k) => k % 2 === 0), ...GROUPED }, { params: ps.filter((_, k) => k % 2 === 1) }];
const inGroup = (k: number): boolean => k % 2 === 0;

test('parameter groups: per-group lrScale and weightDecay (SGD and AdamW vs torch)', async () => {
  const lrs = [0.1, 0.05, 0.02];
  const sgd: SgdRef = { momentum: 0.9, dampening: 0, nesterov: true, weightDecay: 0.1 };
  const rs = await run((ps) => new rk.optim.SGD(groups(ps), { lr: 1, ...sgd }), 3, lrs);
  rs.got.forEach((g, k) => {
    const grouped = inGroup(k);
    const want = sgdRef(rs.init[k], rs.grads[k], grouped ? lrs.map((l) => l * GROUPED.lrScale) : lrs, grouped ? { ...sgd, weightDecay: GROUPED.weightDecay } : sgd);
    expectClose(g, want, 2e-6, `SGD grouped param ${k}`);
  });
  const adam: AdamRef = { betas: [0.9, 0.99], eps: 1e-8, weightDecay: 0.2 };
  const ra = await run((ps) => new rk.optim.AdamW(groups(ps), { lr: 1, ...adam }), 3, lrs);
  ra.got.forEach((g, k) => {
    const grouped = inGroup(k);
    const want = adamwRef(ra.init[k], ra.grads[k], grouped ? lrs.map((l) => l * GROUPED.lrScale) : lrs, grouped ? { ...adam, weightDecay: GROUPED.weightDecay } : adam);
    expectClose(g, want, 2e-6, `AdamW grouped param ${k}`);
  });
  const p = rk.keep(rk.zeros([2]));
  assert.throws(() => new rk.optim.SGD([{ params: [p], lrScale: -1 }], { lr: 0.1 }), /SGD: group 0: invalid lrScale -1/);
  assert.throws(() => new rk.optim.AdamW([{ params: [p] }, { params: [p] }]), /appears twice/);
  p.dispose();
});

test('AdamW first step moves every element by about lr (bias correction)', async () => {
  const p = rk.keep(rk.tensor(new Float32Array(100)));
  p.grad = rk.keep(rk.tensor(Float32Array.from(randn(100, rng))));
  const opt = new rk.optim.AdamW([p], { lr: 0.01, weightDecay: 0 });
  opt.step();
  const a = await read64(p);
  for (const x of a) assert.ok(Math.abs(Math.abs(x) - 0.01) < 1e-4, `|step| ${x}`);
  opt.zeroGrad();
  opt.dispose();
  p.dispose();
});

test('parameters without .grad are skipped (value and step count unchanged)', async () => {
  const a = rk.keep(rk.tensor([1, 2, 3]));
  const b = rk.keep(rk.tensor([4, 5]));
  const opt = new rk.optim.AdamW([a, b], { lr: 0.1 });
  b.grad = rk.keep(rk.tensor([1, 1]));
  opt.step();
  opt.step();
  assert.equal(Array.from(await a.toArray()), [1, 2, 3]);
  assert.is(opt.stepCount(0), 0);
  assert.is(opt.stepCount(1), 2);
  opt.zeroGrad();
  assert.is(b.grad, null);
  opt.dispose();
  a.dispose();
  b.dispose();
});

test('optimizer stateDict / loadStateDict resumes exactly', async () => {
  const n = 300;
  const p0 = Float32Array.from(randn(n, rng));
  const grads = Array.from({ length: 6 }, () => Float32Array.from(randn(n, rng)));
  for (const make of [(ps: rk.Tensor[]) => new rk.optim.AdamW(ps, { lr: 0.05 }), (ps: rk.Tensor[]) => new rk.optim.SGD(ps, { lr: 0.05, momentum: 0.9, nesterov: true })]) {
    const step = (opt: rk.optim.Optimizer, p: rk.Tensor, g: Float32Array) => {
      p.grad = rk.keep(rk.tensor(g));
      opt.step();
      opt.zeroGrad();
    };
    // uninterrupted run
    const a = rk.keep(rk.tensor(p0));
    const oa = make([a]);
    grads.forEach((g) => step(oa, a, g));
    // run 3 steps, save, resume in a new optimizer over a copy of the parameter
    const b = rk.keep(rk.tensor(p0));
    const ob = make([b]);
    grads.slice(0, 3).forEach((g) => step(ob, b, g));
    const sd = ob.stateDict();
    const c = rk.keep(rk.clone(b));
    const oc = make([c]);
    oc.lr = 123; // restored by loadStateDict
    oc.loadStateDict(sd);
    for (const t of sd.tensors.values()) t.dispose();
    ob.dispose();
    assert.is(oc.lr, 0.05);
    assert.is(oc.stepCount(0), 3);
    grads.slice(3).forEach((g) => step(oc, c, g));
    assert.equal(Array.from(await c.toArray()), Array.from(await a.toArray()), `${oa.constructor.name} resumed run differs`);
    for (const o of [oa, oc]) o.dispose();
    for (const t of [a, b, c]) t.dispose();
  }
});

test('optimizer loadStateDict rejects a mismatched state with one clear error', () => {
  const p = rk.keep(rk.tensor([1, 2, 3]));
  const opt = new rk.optim.AdamW([p]);
  const bad = rk.tensor([1, 2]);
  const sd: rk.optim.OptimizerStateDict = { hyper: { lr: 0.1 }, steps: [1, 2], tensors: new Map([['0.exp_avg', bad], ['0.nope', bad]]) };
  try {
    opt.loadStateDict(sd);
    assert.unreachable('should throw');
  } catch (e) {
    const msg = (e as Error).message;
    for (const part of ['2 step counts for 1 parameters', 'unexpected 0.nope', '0.exp_avg: expected [3] f32, got [2] f32']) assert.ok(msg.includes(part), msg);
  }
  bad.dispose();
  opt.dispose();
  p.dispose();
});

test('invalid hyper-parameters throw', () => {
  const p = rk.keep(rk.tensor([1]));
  assert.throws(() => new rk.optim.SGD([p], { lr: 0.1, nesterov: true }), /Nesterov/);
  assert.throws(() => new rk.optim.SGD([p], { lr: -1 }), /learning rate/);
  assert.throws(() => new rk.optim.AdamW([p], { betas: [1, 0.9] }), /beta/);
  assert.throws(() => new rk.optim.SGD([p, p], { lr: 1 }), /twice/);
  const opt = new rk.optim.SGD([p], { lr: 1 });
  assert.throws(() => (opt.lr = NaN), /learning rate/);
  p.dispose();
});

test('schedules: stepLR, multiStepLR, cosineWithWarmup', () => {
  const s = rk.optim.stepLR(0.1, 3, 0.5);
  assert.equal([0, 1, 2, 3, 5, 6, 9].map(s), [0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.0125]);
  const m = rk.optim.multiStepLR(1, [2, 5], 0.1);
  assert.equal([0, 1, 2, 4, 5, 9].map((t) => +m(t).toPrecision(12)), [1, 1, 0.1, 0.1, 0.01, 0.01]);
  const c = rk.optim.cosineWithWarmup(1, 4, 14, 0.1);
  const want = (t: number) => (t < 4 ? (t + 1) / 4 : 0.1 + 0.9 * 0.5 * (1 + Math.cos((Math.PI * Math.min(10, t - 4)) / 10)));
  for (let t = 0; t < 20; t++) assert.ok(Math.abs(c(t) - want(t)) < 1e-12, `cosine step ${t}: ${c(t)} vs ${want(t)}`);
  assert.is(c(3), 1);
  assert.is(c(4), 1);
  assert.ok(Math.abs(c(9) - 0.55) < 1e-12);
  assert.is(c(14), 0.1);
  assert.is(c(100), 0.1);
  const noWarm = rk.optim.cosineWithWarmup(2, 0, 10);
  assert.is(noWarm(0), 2);
  assert.ok(Math.abs(noWarm(5) - 1) < 1e-12);
  assert.throws(() => rk.optim.cosineWithWarmup(1, 5, 3), /warmupSteps/);
  assert.throws(() => rk.optim.stepLR(1, 0), /stepSize/);
});

for (const [label, scale, maxNorm] of [
  ['clips', 1, 3],
  ['below the limit: unchanged', 0.01, 100],
] as const)
  test(`clipGradNorm ${label} (global L2 over all grads, vs CPU)`, async () => {
    const shapes = [[3], [65, 17], [100003], [1]];
    const gs = shapes.map((s) => Float64Array.from(Float32Array.from(randn(numel(s), rng, scale))));
    const ps = shapes.map((s, k) => {
      const p = rk.keep(rk.zeros(s));
      p.grad = rk.keep(rk.tensor(Float32Array.from(gs[k]), s));
      return p;
    });
    const noGrad = rk.keep(rk.zeros([5])); // no .grad: ignored
    const total = Math.sqrt(gs.reduce((a, g) => a + l2(g) ** 2, 0));
    const norm = await rk.optim.clipGradNorm([...ps, noGrad], maxNorm);
    assert.ok(Math.abs(norm - total) / total < 1e-5, `norm ${norm} vs ${total}`);
    const coef = Math.min(1, maxNorm / (total + 1e-6));
    for (let k = 0; k < ps.length; k++) {
      const got = await read64(ps[k].grad!);
      expectClose(got, gs[k].map((x) => x * coef), 1e-6, `clipped grad ${k}`);
      if (coef === 1) assert.equal(Array.from(got), Array.from(gs[k]), 'coef 1 leaves grads bit-identical');
    }
    const after = Math.sqrt((await Promise.all(ps.map((p) => read64(p.grad!)))).reduce((a, g) => a + l2(g) ** 2, 0));
    assert.ok(after <= maxNorm * (1 + 1e-5), `norm after clipping ${after}`);
    for (const p of [...ps, noGrad]) {
      p.grad?.dispose();
      p.dispose();
    }
  });

test('clipGradNorm: gradients sharing one storage are counted twice but scaled once', async () => {
  const a = rk.keep(rk.zeros([4]));
  const b = rk.keep(rk.zeros([4]));
  a.grad = rk.keep(rk.tensor([3, 0, 0, 4]));
  b.grad = rk.keep(a.grad.detach()); // what autograd gives both inputs of an add
  const norm = await rk.optim.clipGradNorm([a, b, a], 1);
  assert.ok(Math.abs(norm - 5 * Math.SQRT2) < 1e-5, `norm ${norm}`);
  const c = 1 / (5 * Math.SQRT2 + 1e-6);
  expectClose(await read64(b.grad), [3 * c, 0, 0, 4 * c], 1e-6, 'scaled once');
  for (const t of [a.grad, b.grad, a, b]) t.dispose();
});

test('clipGradNorm with no gradients returns 0', async () => {
  const p = rk.keep(rk.zeros([4]));
  assert.is(await rk.optim.clipGradNorm([p], 1), 0);
  p.dispose();
});

test('optimizer step and clipping do not leak', async () => {
  const p = rk.keep(rk.tensor(Float32Array.from(randn(500, rng))));
  const opt = new rk.optim.AdamW([p], { lr: 1e-3 });
  const cycle = async () => {
    p.grad = rk.keep(rk.tensor(Float32Array.from(randn(500, rng))));
    await rk.optim.clipGradNorm([p], 0.5);
    opt.step();
    opt.zeroGrad();
  };
  await cycle();
  const base = rk.memoryStats().liveBytes;
  for (let i = 0; i < 20; i++) await cycle();
  assert.is(rk.memoryStats().liveBytes, base);
  opt.dispose();
  p.dispose();
});

test.run();

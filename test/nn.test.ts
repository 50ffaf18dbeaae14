// nn modules: PyTorch naming and state dicts, train/eval, memory, init, Linear, Dropout, conv/BN/pool wrappers.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { gpuInit, read64, expectClose, rk } from './helpers.ts';
import { seededRandom, randn, numericGrad } from './reference/gradcheck.ts';
import { batchNorm2dTrain, batchNorm2dEval } from './reference/norm.ts';
import { conv2d as conv2dRef } from './reference/conv.ts';
import { maxPool2d as maxPoolRef, avgPool2d as avgPoolRef } from './reference/pool.ts';

await gpuInit();
const rng = seededRandom(99);
const { nn } = rk;
const upload = (a: Float64Array, shape: number[]) => rk.tensor(Float32Array.from(a), shape);
const f32 = (a: Float64Array) => Float64Array.from(Float32Array.from(a));

// ---- a torchvision ResNet-18 skeleton (structure only) to check names and order -------------

class BasicBlock extends nn.Module {
  constructor(inp: number, planes: number, stride: number) {
    super();
    this.module('conv1', new nn.Conv2d(inp, planes, 3, { stride, padding: 1, bias: false }));
    this.module('bn1', new nn.BatchNorm2d(planes));
    this.module('relu', new nn.ReLU());
    this.module('conv2', new nn.Conv2d(planes, planes, 3, { padding: 1, bias: false }));
    this.module('bn2', new nn.BatchNorm2d(planes));
    if (stride !== 1 || inp !== planes) this.module('downsample', new nn.Sequential(new nn.Conv2d(inp, planes, 1, { stride, bias: false }), new nn.BatchNorm2d(planes)));
  }
}

class ResNet18 extends nn.Module {
  constructor(b: number, inCh: number, classes: number) {
    super();
    this.module('conv1', new nn.Conv2d(inCh, b, 3, { padding: 1, bias: false }));
    this.module('bn1', new nn.BatchNorm2d(b));
    this.module('relu', new nn.ReLU());
    this.module('maxpool', new nn.Identity());
    let inp = b;
    [b, 2 * b, 4 * b, 8 * b].forEach((planes, i) => {
      const stride = i === 0 ? 1 : 2;
      this.module(`layer${i + 1}`, new nn.Sequential(new BasicBlock(inp, planes, stride), new BasicBlock(planes, planes, 1)));
      inp = planes;
    });
    this.module('avgpool', new nn.AdaptiveAvgPool2d(1));
    this.module('fc', new nn.Linear(8 * b, classes));
  }
}

test('state dict names, order and shapes match torchvision resnet18 (fixture state_dict_names.json)', () => {
  const all = JSON.parse(readFileSync(new URL('./fixtures/torch/state_dict_names.json', import.meta.url), 'utf8')) as Record<string, Record<string, number[]>>;
  const key = Object.keys(all).find((k) => /^resnet18_.*small$/.test(k));
  assert.ok(key, 'a resnet18 small entry in state_dict_names.json');
  const want = all[key!];
  const [b, inCh] = want['conv1.weight'];
  const model = new ResNet18(b, inCh, want['fc.weight'][0]);
  const sd = model.stateDict();
  assert.equal([...sd.keys()], Object.keys(want));
  for (const [name, t] of sd) assert.equal([...t.shape], want[name], name);
  assert.is(sd.get('layer1.0.bn1.num_batches_tracked')!.dtype, 'i32');
  // parameters: the state dict minus buffers, same order; tensors carry their dotted names
  const params = model.namedParameters();
  assert.equal(
    params.map(([n]) => n),
    Object.keys(want).filter((n) => !/running_|num_batches/.test(n)),
  );
  for (const [n, t] of params) assert.is(t.name, n);
  assert.is(model.namedBuffers().length, Object.keys(want).filter((n) => /running_/.test(n)).length);
  assert.is(model.namedIntBuffers().length, Object.keys(want).filter((n) => /num_batches/.test(n)).length);
  assert.is(model.numParameters(), params.reduce((a, [, t]) => a + t.size, 0));
  assert.ok(params.every(([, t]) => t.requiresGrad));
  for (const t of sd.values()) t.dispose();
  model.dispose();
});

class Net extends nn.Module {
  readonly body: rk.nn.Sequential;
  readonly bn: rk.nn.BatchNorm2d;
  constructor(seed: number) {
    super();
    const r = new rk.Rng(seed);
    this.body = this.module('body', new nn.Sequential(new nn.Linear(4, 6, { rng: r }), new nn.ReLU(), new nn.Dropout(0.5), new nn.Linear(6, 3, { bias: false, rng: r })));
    this.bn = this.module('bn', new nn.BatchNorm2d(3));
  }
}

test('namedParameters / stateDict / loadStateDict round trip (incl. num_batches_tracked)', async () => {
  const a = new Net(1);
  const b = new Net(2);
  a.bn.numBatchesTracked = 17;
  rk.writeTensor(a.bn.runningMean, [0.5, -1, 2]);
  assert.equal(
    a.namedParameters().map(([n]) => n),
    ['body.0.weight', 'body.0.bias', 'body.3.weight', 'bn.weight', 'bn.bias'],
  );
  assert.equal([...a.stateDict().keys()], ['body.0.weight', 'body.0.bias', 'body.3.weight', 'bn.weight', 'bn.bias', 'bn.running_mean', 'bn.running_var', 'bn.num_batches_tracked']);
  const sd = a.stateDict();
  assert.is(await sd.get('bn.num_batches_tracked')!.item(), 17);
  const res = await b.loadStateDict(sd);
  assert.equal(res, { missingKeys: [], unexpectedKeys: [] });
  for (const [n, t] of b.stateDict()) assert.equal(Array.from(await t.toArray()), Array.from(await sd.get(n)!.toArray()), n);
  assert.is(b.bn.numBatchesTracked, 17);
  // loading copies: the target keeps its own storage
  rk.writeTensor(a.bn.runningMean, [9, 9, 9]);
  assert.equal(Array.from(await b.bn.runningMean.toArray()), [0.5, -1, 2]);
  // plain numbers are accepted for integer buffers
  await b.loadStateDict(new Map([['bn.num_batches_tracked', 5]]), { strict: false });
  assert.is(b.bn.numBatchesTracked, 5);
  for (const t of sd.values()) t.dispose();
  a.dispose();
  b.dispose();
});

test('loadStateDict strict: one error listing missing, unexpected and mis-shaped names', async () => {
  const a = new Net(1);
  const sd = a.stateDict();
  sd.get('body.0.bias')!.dispose();
  sd.delete('body.0.bias');
  sd.set('body.9.weight', rk.zeros([2]));
  sd.get('bn.weight')!.dispose();
  sd.set('bn.weight', rk.zeros([4]));
  let msg = '';
  try {
    await a.loadStateDict(sd);
  } catch (e) {
    msg = (e as Error).message;
  }
  for (const part of ['missing: body.0.bias', 'unexpected: body.9.weight', 'bn.weight: expected [3] f32, got [4] f32']) assert.ok(msg.includes(part), `"${part}" not in: ${msg}`);
  // non-strict still rejects shape mismatches (like PyTorch) ...
  let threw = false;
  try {
    await a.loadStateDict(sd, { strict: false });
  } catch {
    threw = true;
  }
  assert.ok(threw, 'non-strict load with a mis-shaped tensor must throw');
  // ... but reports missing/unexpected names instead of throwing
  sd.get('bn.weight')!.dispose();
  sd.delete('bn.weight');
  const r = await a.loadStateDict(sd, { strict: false });
  assert.equal(r.missingKeys, ['body.0.bias', 'bn.weight']);
  assert.equal(r.unexpectedKeys, ['body.9.weight']);
  for (const t of sd.values()) t.dispose();
  a.dispose();
});

test('train()/eval() are recursive; zeroGrad; registration errors', () => {
  const a = new Net(3);
  assert.ok(a.namedModules().every(([, m]) => m.training));
  a.eval();
  assert.ok(a.namedModules().every(([, m]) => !m.training));
  assert.is(a.body.at(2).training, false);
  a.train();
  assert.ok(a.namedModules().every(([, m]) => m.training));
  for (const p of a.parameters()) p.grad = rk.keep(rk.ones(p.shape));
  a.zeroGrad();
  assert.ok(a.parameters().every((p) => p.grad === null));
  class Bad extends nn.Module {
    constructor(kind: number) {
      super();
      this.param('w', rk.zeros([1]));
      if (kind === 0) this.buffer('w', rk.zeros([1]));
      if (kind === 1) this.param('a.b', rk.zeros([1]));
    }
  }
  assert.throws(() => new Bad(0), /already registered/);
  assert.throws(() => new Bad(1), /invalid name/);
  a.dispose();
});

test('modules built inside tidy keep their parameters; dispose() frees everything', () => {
  const before = rk.memoryStats().liveBytes;
  const m = rk.tidy(() => new Net(4));
  assert.ok(m.parameters().every((p) => !p.disposed));
  assert.ok(m.namedBuffers().every(([, t]) => !t.disposed));
  m.dispose();
  assert.is(rk.memoryStats().liveBytes, before);
  assert.throws(() => m.call(rk.zeros([1, 4])), /after dispose/);
});

test('init: seeded, default Linear/Conv bounds, kaiming/xavier statistics', async () => {
  const la = new nn.Linear(50, 40, { rng: new rk.Rng(7) });
  const lb = new nn.Linear(50, 40, { rng: new rk.Rng(7) });
  const a = await la.weight.toArray();
  const b = await lb.weight.toArray();
  la.dispose();
  lb.dispose();
  assert.equal(Array.from(a), Array.from(b), 'same seed, same init');
  const bound = 1 / Math.sqrt(50);
  assert.ok(a.every((x) => Math.abs(x) <= bound));
  assert.ok(Math.max(...a.map(Math.abs)) > 0.95 * bound, 'uses the full U(-1/sqrt(in), 1/sqrt(in)) range');
  const conv = new nn.Conv2d(6, 8, 3, { groups: 2, rng: new rk.Rng(1) });
  const cb = 1 / Math.sqrt(3 * 9);
  assert.ok((await conv.bias!.toArray()).every((x) => Math.abs(x) <= cb));
  assert.ok((await conv.weight.toArray()).every((x) => Math.abs(x) <= cb));
  conv.dispose();
  const stats = async (t: rk.Tensor) => {
    const d = await t.toArray();
    const mean = d.reduce((s, x) => s + x, 0) / d.length;
    return { mean, std: Math.sqrt(d.reduce((s, x) => s + (x - mean) ** 2, 0) / d.length), max: Math.max(...d.map(Math.abs)) };
  };
  const w = rk.keep(new rk.Tensor([64, 32, 3, 3], 'f32'));
  nn.init.kaimingNormal(w, { mode: 'fan_out', nonlinearity: 'relu', rng: new rk.Rng(3) });
  let s = await stats(w);
  assert.ok(Math.abs(s.std / Math.sqrt(2 / (64 * 9)) - 1) < 0.03, `kaiming normal fan_out std ${s.std}`);
  nn.init.kaimingNormal(w, { rng: new rk.Rng(3), nonlinearity: 'relu' });
  s = await stats(w);
  assert.ok(Math.abs(s.std / Math.sqrt(2 / (32 * 9)) - 1) < 0.03, `kaiming normal fan_in std ${s.std}`);
  nn.init.kaimingUniform(w, { nonlinearity: 'relu', rng: new rk.Rng(4) });
  s = await stats(w);
  assert.ok(s.max <= Math.sqrt(6 / (32 * 9)) * (1 + 1e-6) && s.max > 0.99 * Math.sqrt(6 / (32 * 9)), `kaiming uniform max ${s.max}`);
  nn.init.xavierUniform(w, { rng: new rk.Rng(5) });
  s = await stats(w);
  assert.ok(s.max <= Math.sqrt(6 / (96 * 9)) * (1 + 1e-6), `xavier uniform max ${s.max}`);
  nn.init.xavierNormal(w, { gain: 2, rng: new rk.Rng(5) });
  s = await stats(w);
  assert.ok(Math.abs(s.std / (2 * Math.sqrt(2 / (96 * 9))) - 1) < 0.03, `xavier normal std ${s.std}`);
  nn.init.normal(w, 3, 0.5, { rng: new rk.Rng(6) });
  s = await stats(w);
  assert.ok(Math.abs(s.mean - 3) < 0.02 && Math.abs(s.std - 0.5) < 0.02, `normal ${s.mean} ${s.std}`);
  nn.init.uniform(w, -2, -1);
  s = await stats(w);
  assert.ok(Math.abs(s.mean + 1.5) < 0.02 && s.max <= 2, `uniform mean ${s.mean}`);
  nn.init.constant(w, 0.25);
  assert.ok((await w.toArray()).every((x) => x === 0.25));
  nn.init.zeros(w);
  assert.ok((await w.toArray()).every((x) => x === 0));
  nn.init.ones(w);
  assert.ok((await w.toArray()).every((x) => x === 1));
  assert.throws(() => nn.init.kaimingNormal(rk.zeros([5])), /rank >= 2/);
  assert.is(nn.init.calculateGain('leaky_relu', Math.sqrt(5)), Math.sqrt(1 / 3));
  w.dispose();
});

test('Linear forward/backward vs float64 reference (awkward shapes) and finite differences', async () => {
  for (const [N, I, O, bias] of [
    [5, 7, 3, true],
    [33, 65, 17, true],
    [2, 130, 9, false],
  ] as const) {
    const lin = new nn.Linear(I, O, { bias, rng: new rk.Rng(N) });
    const W = await read64(lin.weight);
    const B = bias ? await read64(lin.bias!) : new Float64Array(O);
    const xs = f32(randn(N * I, rng));
    const r = f32(randn(N * O, rng));
    const x = upload(xs, [N, I]).requireGrad();
    const y = lin.call(x);
    assert.equal([...y.shape], [N, O]);
    const fwd = (xv: Float64Array, wv: Float64Array, bv: Float64Array) => {
      const out = new Float64Array(N * O);
      for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) {
        let s = bv[o];
        for (let i = 0; i < I; i++) s += xv[n * I + i] * wv[o * I + i];
        out[n * O + o] = s;
      }
      return out;
    };
    expectClose(await read64(y), fwd(xs, W, B), 1e-5, `Linear ${N}x${I}->${O} forward`);
    const loss = rk.sum(rk.mul(y, upload(r, [N, O])));
    loss.backward();
    // analytic reference grads: dx = r W, dW = r^T x, db = sum_n r
    const dx = new Float64Array(N * I);
    const dW = new Float64Array(O * I);
    const db = new Float64Array(O);
    for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) {
      db[o] += r[n * O + o];
      for (let i = 0; i < I; i++) {
        dx[n * I + i] += r[n * O + o] * W[o * I + i];
        dW[o * I + i] += r[n * O + o] * xs[n * I + i];
      }
    }
    const L = (xv: Float64Array, wv: Float64Array, bv: Float64Array) => fwd(xv, wv, bv).reduce((s, v, k) => s + v * r[k], 0);
    if (N * I < 40) {
      expectClose(numericGrad((v) => L(v, W, B), xs), dx, 1e-6, 'reference dx vs finite differences');
      expectClose(numericGrad((v) => L(xs, v, B), W), dW, 1e-6, 'reference dW vs finite differences');
      expectClose(numericGrad((v) => L(xs, W, v), B), db, 1e-6, 'reference db vs finite differences');
    }
    expectClose(await read64(x.grad!), dx, 1e-5, 'Linear dx');
    expectClose(await read64(lin.weight.grad!), dW, 1e-5, 'Linear dW');
    if (bias) expectClose(await read64(lin.bias!.grad!), db, 1e-5, 'Linear db');
    for (const t of [x.grad!, x, y, loss]) t.dispose();
    lin.dispose();
  }
  assert.throws(() => new nn.Linear(0, 3), /inFeatures/);
});

test('Dropout: keep rate, 1/(1-p) scaling, fresh masks, eval identity, backward uses the mask', async () => {
  const n = 200_000;
  const p = 0.3;
  const d = new nn.Dropout(p, { seed: 11 });
  const x = rk.keep(rk.ones([n]));
  const y1 = d.call(x);
  const a = await y1.toArray();
  const zeros = a.filter((v) => v === 0).length;
  const sigma = Math.sqrt(n * p * (1 - p));
  assert.ok(Math.abs(zeros - n * p) < 5 * sigma, `dropped ${zeros} of ${n}, expected ${n * p} +- ${5 * sigma}`);
  assert.ok(a.every((v) => v === 0 || Math.abs(v - 1 / (1 - p)) < 1e-6), 'kept values are scaled by 1/(1-p)');
  const mean = a.reduce((s, v) => s + v, 0) / n;
  assert.ok(Math.abs(mean - 1) < 0.01, `mean ${mean}`);
  // neighbours are not correlated (the hash mixes the index)
  let both = 0;
  for (let i = 0; i + 1 < n; i += 2) if (a[i] === 0 && a[i + 1] === 0) both++;
  assert.ok(Math.abs(both - (n / 2) * p * p) < 5 * Math.sqrt((n / 2) * p * p), `pairs both dropped: ${both}`);
  const y2 = d.call(x);
  const b = await y2.toArray();
  assert.ok(a.some((v, i) => v !== b[i]), 'each call draws a new mask');
  d.eval();
  const y3 = d.call(x);
  assert.equal(Array.from(await y3.toArray()), Array.from(await x.toArray()), 'identity in eval');
  // same seed gives the same mask; backward applies that mask
  const xs = upload(f32(randn(1000, rng)), [10, 100]).requireGrad();
  const o1 = nn.dropout(xs, 0.6, { seed: 5 });
  const o2 = nn.dropout(xs, 0.6, { seed: 5 });
  const v1 = await o1.toArray();
  assert.equal(Array.from(v1), Array.from(await o2.toArray()));
  const g = f32(randn(1000, rng));
  o1.backward(upload(g, [10, 100]));
  const xv = await xs.toArray();
  const gx = await xs.grad!.toArray();
  for (let i = 0; i < 1000; i++) {
    const want = v1[i] === 0 && xv[i] !== 0 ? 0 : g[i] / 0.4;
    assert.ok(Math.abs(gx[i] - want) < 1e-5 * Math.max(1, Math.abs(want)), `grad ${i}: ${gx[i]} vs ${want}`);
  }
  const z = nn.dropout(xs, 1, { seed: 1 });
  assert.ok((await z.toArray()).every((v) => v === 0), 'p = 1 drops everything');
  assert.equal(Array.from(await nn.dropout(xs, 0).toArray()), Array.from(xv), 'p = 0 is the identity');
  assert.throws(() => nn.dropout(xs, 1.5), /p must be in/);
  for (const t of [x, y1, y2, y3, xs.grad!, xs, o1, o2, z]) t.dispose();
});

test('Sequential: names, forward releases intermediates, Identity/Flatten/ReLU6', async () => {
  const seq = new nn.Sequential(new nn.ReLU6(), new nn.Identity(), new nn.Flatten(), new nn.Dropout(0.5));
  assert.equal(
    seq.namedChildren().map(([n]) => n),
    ['0', '1', '2', '3'],
  );
  seq.eval();
  const x = rk.keep(upload(f32(randn(2 * 3 * 4 * 5, rng, 5)), [2, 3, 4, 5]));
  const before = rk.memoryStats().liveBytes;
  const y = rk.noGrad(() => seq.call(x));
  assert.equal([...y.shape], [2, 60]);
  // only the output survives (Identity/Flatten/Dropout(eval) are views of the ReLU6 output)
  assert.is(rk.memoryStats().liveBytes - before, 512); // one 480-byte buffer (size class 512)
  const xv = await x.toArray();
  assert.equal(Array.from(await y.toArray()), Array.from(xv.map((v) => Math.min(6, Math.max(0, v)))));
  y.dispose();
  // with a graph: intermediates released by the forward, backward still works
  const xg = upload(f32(randn(24, rng)), [4, 6]).requireGrad();
  const net = new nn.Sequential(new nn.Linear(6, 5), new nn.ReLU(), new nn.Linear(5, 2));
  const out = net.call(xg);
  const live = rk.memoryStats().liveBuffers;
  rk.sum(out).backward();
  assert.ok(xg.grad && net.parameters().every((p) => p.grad), 'all grads present');
  assert.ok(rk.memoryStats().liveBuffers >= live - 10);
  const named = Sequential_named();
  assert.equal(
    named.namedParameters().map(([n]) => n),
    ['conv0.weight', 'norm0.weight', 'norm0.bias'],
  );
  assert.is(named.length, 3);
  assert.throws(() => named.at(5), /3 children/);
  for (const t of [x, xg, xg.grad!, out]) t.dispose();
  net.dispose();
  named.dispose();
});

function Sequential_named() {
  return nn.Sequential.named([
    ['conv0', new nn.Conv2d(3, 4, 3, { bias: false })],
    ['norm0', new nn.BatchNorm2d(4)],
    ['relu0', new nn.ReLU()],
  ]);
}

test('BatchNorm2d module: batch stats in train (num_batches_tracked += 1), running stats in eval', async () => {
  const shape = [3, 4, 5, 6];
  const bn = new nn.BatchNorm2d(4, { momentum: 0.2 });
  rk.writeTensor(bn.weight!, [1.5, 0.5, 1, 2]);
  rk.writeTensor(bn.bias!, [0.1, -0.2, 0.3, 0]);
  const xs = f32(randn(360, rng, 2));
  const x = upload(xs, shape);
  const y = bn.call(x);
  const gamma = Float64Array.from([1.5, 0.5, 1, 2]);
  const beta = Float64Array.from([0.1, -0.2, 0.3, 0]);
  const ref = batchNorm2dTrain(xs, shape, gamma, beta);
  expectClose(await read64(y), ref.y, 1e-5, 'BatchNorm2d train forward');
  assert.is(bn.numBatchesTracked, 1);
  expectClose(await read64(bn.runningMean), ref.mean.map((m) => 0.2 * m), 1e-5, 'running mean');
  expectClose(await read64(bn.runningVar), ref.varUnbiased.map((v) => 0.8 + 0.2 * v), 1e-5, 'running var');
  bn.eval();
  const ye = bn.call(x);
  expectClose(await read64(ye), batchNorm2dEval(xs, shape, await read64(bn.runningMean), await read64(bn.runningVar), gamma, beta), 1e-5, 'BatchNorm2d eval forward');
  assert.is(bn.numBatchesTracked, 1);
  // momentum null: cumulative average, factor 1 / num_batches_tracked
  const cum = new nn.BatchNorm2d(4, { momentum: null, affine: false, activation: 'relu' });
  assert.is(cum.parameters().length, 0);
  const yc = cum.call(x);
  expectClose(await read64(cum.runningMean), ref.mean, 1e-5, 'cumulative running mean after one batch');
  assert.ok((await yc.toArray()).every((v) => v >= 0), 'fused relu');
  for (const t of [x, y, ye, yc]) t.dispose();
  bn.dispose();
  cum.dispose();
});

test('Conv2d and pooling modules wrap the functional ops', async () => {
  const xs = f32(randn(2 * 4 * 9 * 7, rng));
  const x = upload(xs, [2, 4, 9, 7]);
  const conv = new nn.Conv2d(4, 6, [3, 2], { stride: [2, 1], padding: 1, dilation: [1, 2], groups: 2, rng: new rk.Rng(8) });
  assert.equal([...conv.weight.shape], [6, 2, 3, 2]);
  const y = conv.call(x);
  const ref = conv2dRef(xs, [2, 4, 9, 7], await read64(conv.weight), [6, 2, 3, 2], await read64(conv.bias!), { stride: [2, 1], padding: [1, 1, 1, 1], dilation: [1, 2], groups: 2 });
  assert.equal([...y.shape], ref.shape);
  expectClose(await read64(y), ref.y, 1e-5, 'Conv2d forward');
  const mp = new nn.MaxPool2d(3, { stride: 2, padding: 1 }).call(x);
  expectClose(await read64(mp), maxPoolRef(xs, [2, 4, 9, 7], { kernel: [3, 3], stride: [2, 2], padding: [1, 1] }).y, 1e-6, 'MaxPool2d');
  const ap = new nn.AvgPool2d(2).call(x);
  expectClose(await read64(ap), avgPoolRef(xs, [2, 4, 9, 7], { kernel: [2, 2], stride: [2, 2], padding: [0, 0] }).y, 1e-6, 'AvgPool2d');
  const gp = new nn.AdaptiveAvgPool2d([1, 1]).call(x);
  assert.equal([...gp.shape], [2, 4, 1, 1]);
  assert.throws(() => new nn.Conv2d(4, 6, 3, { groups: 4 }), /groups 4 must divide/);
  for (const t of [x, y, mp, ap, gp]) t.dispose();
  conv.dispose();
});

test.run();

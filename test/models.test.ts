// models/: torchvision structure (parameter counts, state-dict names and shapes in order),
// options, init rules, seeding, save/load round trips, a full-width ResNet-18 training pass and
// memory stability over training steps.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gpuInit, rk } from './helpers.ts';
import {
  createModel,
  modelNames,
  makeDivisible,
  roundHalfEven,
  resnet18,
  resnet50,
  densenet121,
  mobilenetV2,
  MobileNetV2,
  InvertedResidual,
  type Model,
} from '../models/index.ts';
import { saveModelWeights, loadModelWeights, loadSafetensors } from '../engine/node/safetensors-file.ts';
import * as nn from '../engine/nn/index.ts';

await gpuInit();

const FIX = new URL('./fixtures/torch/', import.meta.url).pathname;
const dir = mkdtempSync(join(tmpdir(), 'roskd-models-'));
process.on('exit', () => rmSync(dir, { recursive: true, force: true }));

const stats = (a: ArrayLike<number>) => {
  let s = 0;
  let s2 = 0;
  for (let i = 0; i < a.length; i++) {
    s += a[i];
    s2 += a[i] * a[i];
  }
  const mean = s / a.length;
  return { mean, std: Math.sqrt(s2 / a.length - mean * mean) };
};

/** A reproducible batch (host RNG). */
const batch = (shape: number[], seed: number) => rk.randn(shape, { rng: new rk.Rng(seed) });

test('parameter counts at full width match torchvision (1000 classes, 3 channels, standard stem)', async () => {
  const want = JSON.parse(readFileSync(FIX + 'param_counts.json', 'utf8')) as Record<string, number>;
  assert.equal(Object.keys(want).sort(), modelNames().sort());
  assert.equal(want, { resnet18: 11689512, resnet34: 21797672, resnet50: 25557032, densenet121: 7978856, mobilenet_v2: 3504872 });
  const live0 = rk.memoryStats().liveBytes;
  for (const name of modelNames()) {
    const m = createModel(name);
    assert.is(m.numParameters(), want[name], name);
    const x = m.stateDict();
    const bytes = [...x.values()].reduce((a, t) => a + t.size * 4, 0);
    assert.ok(bytes > want[name] * 4, `${name}: buffers are in the state dict too`);
    for (const t of x.values()) t.dispose();
    m.dispose();
  }
  assert.is(rk.memoryStats().liveBytes, live0, 'dispose() frees every parameter and buffer');
});

test('state dict names and shapes equal PyTorch, in order (state_dict_names.json)', () => {
  const names = JSON.parse(readFileSync(FIX + 'state_dict_names.json', 'utf8')) as Record<string, Record<string, number[]>>;
  const cfg: Record<string, [string, Parameters<typeof createModel>[1]]> = {
    'resnet18_w0.125_small': ['resnet18', { width: 0.125, smallInput: true, inChannels: 1, numClasses: 3 }],
    'mobilenet_v2_w0.25_small': ['mobilenet_v2', { width: 0.25, smallInput: true, inChannels: 3, numClasses: 3 }],
    'densenet121_w0.125_small': ['densenet121', { width: 0.125, smallInput: true, inChannels: 1, numClasses: 3 }],
  };
  assert.equal(Object.keys(names).sort(), Object.keys(cfg).sort());
  for (const [fixture, [model, opts]] of Object.entries(cfg)) {
    const m = createModel(model, opts);
    const sd = m.stateDict();
    const got = [...sd].map(([k, t]) => [k, [...t.shape]]);
    assert.equal(got, Object.entries(names[fixture]), fixture);
    for (const [k, t] of sd) {
      assert.is(t.dtype, k.endsWith('num_batches_tracked') ? 'i32' : 'f32', k);
      t.dispose();
    }
    m.dispose();
  }
});

test('options: width rules, stems, registry names and errors', () => {
  // Python round (half to even) and torchvision's _make_divisible
  assert.equal([0.5, 1.5, 2.5, 8, 16.5, 16.6].map(roundHalfEven), [0, 2, 2, 8, 16, 17]);
  assert.equal([32 * 0.25, 16 * 0.25, 24 * 0.25, 32 * 0.25, 64 * 0.25, 96 * 0.25, 160 * 0.25, 320 * 0.25, 1280].map((v) => makeDivisible(v)), [8, 8, 8, 8, 16, 24, 40, 80, 1280]);
  assert.is(makeDivisible(32 * 1.4), 48);
  assert.is(makeDivisible(11), 16, 'never more than 10% below');
  // MobileNetV2 at width 0.25: per-block output channels listed in the fixtures README
  const mb = mobilenetV2({ width: 0.25, smallInput: true, numClasses: 3 });
  const outs = mb.features.children().map((b) => (b instanceof InvertedResidual ? b.conv.at<nn.Conv2d | nn.BatchNorm2d>(-1) : (b as nn.Sequential).at<nn.BatchNorm2d>(1)));
  assert.equal(outs.map((m) => (m as nn.BatchNorm2d).numFeatures), [8, 8, 8, 8, 8, 8, 8, 16, 16, 16, 16, 24, 24, 24, 40, 40, 40, 80, 1280]);
  assert.equal(mb.features.at<nn.Sequential>(0).at<nn.Conv2d>(0).stride, [1, 1], 'small input: stride-1 stem');
  const dwStride = (b: nn.Module) => b.namedModules().map(([, c]) => c).find((c): c is nn.Conv2d => c instanceof nn.Conv2d && c.groups > 1)?.stride[0];
  const strides = mb.features.children().map(dwStride);
  assert.equal(strides.flatMap((s, i) => (s === 2 ? [i] : [])), [2, 4, 7, 14]);
  assert.equal(mb.features.children().flatMap((b, i) => (b instanceof InvertedResidual && b.useResConnect ? [i] : [])), [1, 3, 5, 6, 8, 9, 10, 12, 13, 15, 16], 'residual iff stride 1 and in == out (features.1 too at width 0.25)');
  assert.is(mobilenetV2({ width: 1.4 }).lastChannel, 1792, 'last channel scales by max(1, width)');
  mb.dispose();
  // ResNet stems
  const std = resnet18({ width: 0.25 });
  assert.equal([std.conv1.kernelSize, std.conv1.stride, std.conv1.padding, std.maxpool instanceof nn.MaxPool2d], [[7, 7], [2, 2], [3, 3], true]);
  assert.equal(std.conv1.weight.shape, [16, 3, 7, 7]);
  const small = resnet18({ width: 0.25, smallInput: true, inChannels: 1 });
  assert.equal([small.conv1.kernelSize, small.conv1.stride, small.conv1.padding, small.maxpool instanceof nn.Identity], [[3, 3], [1, 1], [1, 1], true]);
  assert.equal(small.conv1.weight.shape, [16, 1, 3, 3]);
  const r50 = resnet50({ width: 0.125, numClasses: 7 });
  assert.ok(r50.layer1.at<nn.Module>(0).namedChildren().some(([n]) => n === 'downsample'), 'resnet50 layer1.0 has a stride-1 downsample');
  assert.ok(!small.layer1.at<nn.Module>(0).namedChildren().some(([n]) => n === 'downsample'), 'resnet18 layer1.0 has none');
  assert.equal(r50.fc.weight.shape, [7, 8 * 8 * 4]);
  for (const m of [std, small, r50]) m.dispose();
  // DenseNet: growth round(32w), init features 2g, compression 0.5
  const dn = densenet121({ width: 0.25, smallInput: true });
  assert.equal(dn.config, { growthRate: 8, blockConfig: [6, 12, 24, 16], numInitFeatures: 16, bnSize: 4 });
  assert.equal(dn.features.namedChildren().map(([n]) => n), ['conv0', 'norm0', 'denseblock1', 'transition1', 'denseblock2', 'transition2', 'denseblock3', 'transition3', 'denseblock4', 'norm5']);
  assert.is(dn.numFeatures, 256); // 1024 * width
  assert.is(densenet121({ width: 0.25 }).features.namedChildren()[2][0], 'pool0');
  dn.dispose();
  // registry
  assert.ok(createModel('mobilenetv2', { width: 0.25, numClasses: 2 }) instanceof MobileNetV2);
  assert.ok(createModel('MobileNet_V2', { width: 0.25, numClasses: 2 }) instanceof MobileNetV2);
  assert.throws(() => createModel('constructor'), /unknown model "constructor"/);
  assert.throws(() => createModel('vgg16'), /unknown model "vgg16"; available: resnet18, resnet34, resnet50, densenet121, mobilenet_v2/);
  assert.throws(() => createModel('resnet18', { numClasses: 0 }), /resnet18: numClasses must be a positive integer, got 0/);
  assert.throws(() => createModel('resnet18', { width: -1 }), /width must be a positive number/);
  assert.throws(() => createModel('resnet18', { width: 0.001 }), /leaves no channels/);
});

test('init follows torchvision per model, and is seeded', async () => {
  // ResNet: convs N(0, sqrt(2 / fan_out)); BN 1/0, running 0/1; fc U(+-1/sqrt(fan_in)) incl. bias
  const r = resnet18({ width: 0.5, numClasses: 10, seed: 3 });
  const w = await r.layer3.at<nn.Module>(0).namedParameters()[0][1].toArray(); // conv1 [128, 64, 3, 3]
  const s = stats(w);
  assert.ok(Math.abs(s.std / Math.sqrt(2 / (128 * 9)) - 1) < 0.03, `resnet conv std ${s.std}`);
  assert.ok(Math.abs(s.mean) < 0.003);
  assert.equal([...(await r.bn1.weight!.toArray())], new Array(32).fill(1));
  assert.equal([...(await r.bn1.bias!.toArray())], new Array(32).fill(0));
  assert.equal([...(await r.bn1.runningVar.toArray())], new Array(32).fill(1));
  const fb = await r.fc.bias!.toArray();
  const bound = 1 / Math.sqrt(256);
  assert.ok(fb.every((v) => Math.abs(v) <= bound) && fb.some((v) => v !== 0), 'resnet fc bias: default Linear init (non-zero)');
  // same seed -> same weights; another seed -> different
  const r2 = resnet18({ width: 0.5, numClasses: 10, seed: 3 });
  const r3 = resnet18({ width: 0.5, numClasses: 10, seed: 4 });
  const a = await r.layer4.at<nn.Module>(1).namedParameters()[0][1].toArray();
  assert.equal([...(await r2.layer4.at<nn.Module>(1).namedParameters()[0][1].toArray())], [...a]);
  assert.not.equal([...(await r3.layer4.at<nn.Module>(1).namedParameters()[0][1].toArray())], [...a]);
  assert.equal([...(await r2.fc.weight.toArray())], [...(await r.fc.weight.toArray())]);
  for (const m of [r, r2, r3]) m.dispose();
  // DenseNet: convs kaiming fan_in; classifier bias 0
  const d = densenet121({ width: 0.5, numClasses: 10, seed: 1 });
  const conv2 = new Map(d.namedParameters()).get('features.denseblock2.denselayer3.conv2.weight')!;
  assert.equal(conv2.shape, [16, 64, 3, 3]);
  assert.ok(Math.abs(stats(await conv2.toArray()).std / Math.sqrt(2 / (64 * 9)) - 1) < 0.05, 'densenet conv fan_in');
  assert.equal([...(await d.classifier.bias!.toArray())], new Array(10).fill(0));
  d.dispose();
  // MobileNetV2: convs fan_out; classifier N(0, 0.01), bias 0
  const m = mobilenetV2({ numClasses: 100, seed: 1 });
  const fc = m.classifier.at<nn.Linear>(1);
  const fs = stats(await fc.weight.toArray());
  assert.ok(Math.abs(fs.std / 0.01 - 1) < 0.02, `mobilenet classifier std ${fs.std}`);
  assert.equal([...(await fc.bias!.toArray())], new Array(100).fill(0));
  const dw = m.features.at<InvertedResidual>(4).conv.at<nn.Sequential>(1).at<nn.Conv2d>(0).weight; // [144, 1, 3, 3]
  assert.equal(dw.shape, [144, 1, 3, 3]);
  assert.ok(Math.abs(stats(await dw.toArray()).std / Math.sqrt(2 / (144 * 9)) - 1) < 0.1, 'depthwise fan_out = out * 9');
  assert.ok(m.classifier.at(0) instanceof nn.Dropout && (m.classifier.at(0) as nn.Dropout).p === 0.2);
  m.dispose();
});

test('every model runs forward (train and eval) on small inputs with the right output shape', async () => {
  const cases: [string, Parameters<typeof createModel>[1], number[]][] = [
    ['resnet18', { width: 0.125, numClasses: 5, inChannels: 1 }, [2, 1, 40, 36]],
    ['resnet34', { width: 0.125, smallInput: true, numClasses: 2 }, [2, 3, 16, 16]],
    ['resnet50', { width: 0.125, smallInput: true, numClasses: 3 }, [2, 3, 12, 12]],
    ['densenet121', { width: 0.125, numClasses: 4 }, [2, 3, 40, 40]],
    ['mobilenet_v2', { width: 0.25, numClasses: 6 }, [2, 3, 33, 33]],
  ];
  for (const [name, opts, shape] of cases) {
    const m = createModel(name, opts);
    const x = batch(shape, 1);
    for (const mode of ['train', 'eval'] as const) {
      m.train(mode === 'train');
      const y = rk.noGrad(() => m.call(x));
      assert.equal(y.shape, [shape[0], opts!.numClasses!], `${name} ${mode}`);
      const v = await y.toArray();
      assert.ok(v.every(Number.isFinite), `${name} ${mode}: finite`);
      y.dispose();
    }
    const f = rk.noGrad(() => rk.tidy(() => m.forwardFeatures(x)));
    assert.equal(f.shape, [shape[0], m.numFeatures], `${name} forwardFeatures`);
    f.dispose();
    x.dispose();
    m.dispose();
  }
});

/** Fresh random running statistics so eval-mode outputs depend on every buffer. */
async function perturbBuffers(m: Model, seed: number): Promise<void> {
  const rng = new rk.Rng(seed);
  for (const [, b] of m.namedModules()) {
    if (!(b instanceof nn.BatchNorm2d)) continue;
    rk.writeTensor(b.runningMean, Array.from({ length: b.numFeatures }, () => rng.normal() * 0.1));
    rk.writeTensor(b.runningVar, Array.from({ length: b.numFeatures }, () => 0.5 + rng.uniform()));
    rk.writeTensor(b.weight!, Array.from({ length: b.numFeatures }, () => 0.5 + rng.uniform()));
    b.numBatchesTracked = 1 + rng.int(100);
  }
}

test('save -> load into a differently seeded model -> identical outputs (all models)', async () => {
  for (const name of modelNames()) {
    const opts = { width: name === 'mobilenet_v2' ? 0.25 : 0.125, smallInput: true, numClasses: 3 };
    const a = createModel(name, { ...opts, seed: 1 });
    await perturbBuffers(a, 7);
    const path = join(dir, `${name}.safetensors`);
    const live = rk.memoryStats().liveBytes;
    await saveModelWeights(a, path, { model: name });
    assert.is(rk.memoryStats().liveBytes, live, 'saveModelWeights releases the state-dict handles');
    const b = createModel(name, { ...opts, seed: 2 });
    assert.equal((await loadSafetensors(path)).metadata, { model: name });
    const rep = await loadModelWeights(b, path);
    assert.is(rep.loaded.length, a.namedParameters().length + a.namedBuffers().length + a.namedIntBuffers().length);
    const x = batch([2, 3, 16, 16], 5);
    a.eval();
    b.eval();
    const ya = await rk.noGrad(() => a.call(x)).toArray();
    const yb = await rk.noGrad(() => b.call(x)).toArray();
    assert.equal([...yb], [...ya], `${name}: bit-identical eval outputs`);
    const na = a.namedIntBuffers().map(([, v]) => v.value);
    assert.equal(b.namedIntBuffers().map(([, v]) => v.value), na, `${name}: num_batches_tracked restored`);
    a.dispose();
    b.dispose();
    x.dispose();
  }
});

test('full-width ResNet-18 forward + backward, batch 2, 64x64, standard stem', async () => {
  const m = resnet18({ seed: 0 });
  const x = batch([2, 3, 64, 64], 11).requireGrad();
  const r = batch([2, 1000], 12);
  const t0 = performance.now();
  const logits = m.call(x);
  const loss = rk.sum(rk.mul(logits, r));
  loss.backward();
  const gx = await x.grad!.toArray();
  const secs = (performance.now() - t0) / 1000;
  assert.equal(logits.shape, [2, 1000]);
  assert.ok(gx.every(Number.isFinite) && gx.some((v) => v !== 0));
  const params = m.namedParameters();
  assert.is(params.length, 62);
  for (const [n, p] of params) assert.ok(p.grad && p.grad.shape.join() === p.shape.join(), `${n} has a gradient`);
  const g1 = await m.conv1.weight.grad!.toArray();
  assert.ok(g1.every(Number.isFinite) && g1.some((v) => v !== 0));
  console.log(`  full-width resnet18 fwd+bwd (2x3x64x64): ${secs.toFixed(2)} s`);
  m.dispose();
  for (const t of [x, r, logits, loss]) t.dispose();
});

test('memory: live bytes are stable across training steps (activations released after backward)', async () => {
  for (const name of ['resnet18', 'densenet121', 'mobilenet_v2']) {
    const base0 = rk.memoryStats().liveBytes;
    const m = createModel(name, { width: name === 'mobilenet_v2' ? 0.25 : 0.125, smallInput: true, numClasses: 4, inChannels: 1 });
    m.train();
    const x = batch([4, 1, 16, 16], 3);
    const r = batch([4, 4], 4);
    const opt = new rk.optim.SGD(m.parameters(), { lr: 0.01, momentum: 0.9 });
    await rk.sync();
    const base = rk.memoryStats().liveBytes;
    const live: number[] = [];
    for (let step = 0; step < 5; step++) {
      rk.tidy(() => {
        const loss = rk.sum(rk.mul(m.call(x), r));
        loss.backward();
        opt.step();
        opt.zeroGrad();
      });
      await rk.sync();
      live.push(rk.memoryStats().liveBytes);
    }
    // step 1 creates the momentum buffers; from then on nothing may accumulate
    assert.ok(live.slice(1).every((v) => v === live[1]), `${name}: live bytes per step ${live.join(', ')}`);
    assert.ok(live[0] > base, `${name}: momentum buffers exist after the first step`);
    opt.dispose();
    m.dispose();
    x.dispose();
    r.dispose();
    assert.is(rk.memoryStats().liveBytes, base0, `${name}: everything freed`);
  }
});

test.run();

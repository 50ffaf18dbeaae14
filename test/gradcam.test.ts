// Grad-CAM (models/gradcam.ts) and its rendering helpers (models/gradcam-render.ts, node/gradcam-files.ts):
//  - a tiny conv net against a float64 CPU Grad-CAM written here from the test/reference ops,
//    at four target layers, predicted and given classes;
//  - all five architectures at a small width: shapes, finiteness, non-negativity, restored state,
//    no leaked GPU memory, and a constructed case whose class score can only come from one
//    image region (zero image with a bright patch, fresh BN, positive classifier weights);
//  - PyTorch's Grad-CAM of the same weights (test/fixtures/gradcam, made by its python script);
//  - the renderers: bilinear upsampling, normalisation, colour maps, overlay, figure, .npy, PNG.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { PNG } from 'pngjs';
import { gpuInit, rk } from './helpers.ts';
import { conv2d as refConv, conv2dBackward as refConvBackward, type Conv2dOptions } from './reference/conv.ts';
import { batchNorm2dEval } from './reference/norm.ts';
import { globalAvgPool, globalAvgPoolBackward } from './reference/pool.ts';
import { seededRandom, randn as refRandn, randu } from './reference/gradcheck.ts';
import * as nn from '../engine/nn/index.ts';
import { createModel, modelNames } from '../models/index.ts';
import { gradCam, defaultCamLayer, layerNames } from '../models/gradcam.ts';
import { upsampleBilinear, normalizeMap, camToImageSize, colormap, colorize, overlayHeatmap, renderCamFigure, encodeNpy, mapOf, imageFromChw, type Image8 } from '../models/gradcam-render.ts';
import { writeCamFiles, encodeRgbaPng } from '../models/node/gradcam-files.ts';
import { loadSafetensors, copyIntoModel } from '../engine/node/safetensors-file.ts';

await gpuInit();

const report: string[] = [];

// ------------------------------------------------------------------ tiny net + float64 reference

class TinyNet extends nn.Module {
  readonly features: nn.Sequential;
  readonly fc: nn.Linear;
  constructor(rng: rk.Rng) {
    super();
    this.features = this.module(
      'features',
      nn.Sequential.named([
        ['conv1', new nn.Conv2d(2, 4, 3, { padding: 1, rng })],
        ['bn1', new nn.BatchNorm2d(4, { activation: 'relu' })],
        ['conv2', new nn.Conv2d(4, 5, 3, { stride: 2, padding: 1, rng })],
        ['relu2', new nn.ReLU()],
      ]),
    );
    this.fc = this.module('fc', new nn.Linear(5, 3, { rng }));
  }
  override forward(x: rk.Tensor): rk.Tensor {
    const f = this.features.call(x);
    return this.fc.call(rk.flatten(rk.adaptiveAvgPool2d(f, 1), 1));
  }
}

const f64 = async (t: rk.Tensor): Promise<Float64Array> => Float64Array.from(await t.toArray());
const opts = (stride: number): Conv2dOptions => ({ stride: [stride, stride], padding: [1, 1, 1, 1], dilation: [1, 1], groups: 1 });

/** Float64 Grad-CAM of TinyNet at each of its four layers, by hand-written forward and backward. */
async function tinyReference(net: TinyNet, x: Float64Array, xShape: number[], classes: Int32Array | null) {
  const [c1, bn, c2] = [net.features.at<nn.Conv2d>(0), net.features.at<nn.BatchNorm2d>(1), net.features.at<nn.Conv2d>(2)];
  const [w1, b1, w2, b2, g, be, rm, rv, wf, bf] = await Promise.all([c1.weight, c1.bias!, c2.weight, c2.bias!, bn.weight!, bn.bias!, bn.runningMean, bn.runningVar, net.fc.weight, net.fc.bias!].map(f64));
  const a1 = refConv(x, xShape, w1, c1.weight.shape, b1, opts(1));
  const z1 = batchNorm2dEval(a1.y, a1.shape, rm, rv, g, be, bn.eps);
  const h1 = z1.map((v) => Math.max(0, v));
  const a2 = refConv(h1, a1.shape, w2, c2.weight.shape, b2, opts(2));
  const h2 = a2.y.map((v) => Math.max(0, v));
  const p = globalAvgPool(h2, a2.shape).y;
  const [N] = xShape;
  const K = 3;
  const F = 5;
  const logits = new Float64Array(N * K);
  for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) logits[n * K + k] = bf[k] + [...Array(F).keys()].reduce((s, f) => s + p[n * F + f] * wf[k * F + f], 0);
  const cls = classes ?? Int32Array.from({ length: N }, (_, n) => [...Array(K).keys()].reduce((b, k) => (logits[n * K + k] > logits[n * K + b] ? k : b), 0));
  // backward of sum_n logits[n, cls_n]
  const dp = new Float64Array(N * F);
  for (let n = 0; n < N; n++) for (let f = 0; f < F; f++) dp[n * F + f] = wf[cls[n] * F + f];
  const dh2 = globalAvgPoolBackward(dp, a2.shape);
  const da2 = dh2.map((gv, i) => (a2.y[i] > 0 ? gv : 0));
  const dh1 = refConvBackward(h1, a1.shape, w2, c2.weight.shape, da2, opts(2)).dx;
  const C1 = a1.shape[1];
  const HW1 = a1.shape[2] * a1.shape[3];
  const da1 = dh1.map((gv, i) => (z1[i] > 0 ? (gv * g[Math.floor(i / HW1) % C1]) / Math.sqrt(rv[Math.floor(i / HW1) % C1] + bn.eps) : 0));
  const cam = (A: Float64Array, G: Float64Array, shape: number[]) => {
    const [, C, h, w] = shape;
    const out = new Float64Array(N * h * w);
    for (let n = 0; n < N; n++)
      for (let c = 0; c < C; c++) {
        const o = (n * C + c) * h * w;
        let wt = 0;
        for (let q = 0; q < h * w; q++) wt += G[o + q];
        wt /= h * w;
        for (let q = 0; q < h * w; q++) out[n * h * w + q] += wt * A[o + q];
      }
    return out.map((v) => Math.max(0, v));
  };
  return {
    logits,
    classes: cls,
    maps: {
      'features.conv1': cam(a1.y, da1, a1.shape),
      'features.bn1': cam(h1, dh1, a1.shape),
      'features.conv2': cam(a2.y, da2, a2.shape),
      'features.relu2': cam(h2, dh2, a2.shape),
    } as Record<string, Float64Array>,
  };
}

const absMax = (got: ArrayLike<number>, want: ArrayLike<number>): string => {
  let d = 0;
  for (let i = 0; i < got.length; i++) d = Math.max(d, Math.abs(got[i] - want[i]));
  return d.toExponential(1);
};

/** max |got - want| / max |want| */
function relMax(got: ArrayLike<number>, want: ArrayLike<number>, what: string): number {
  assert.is(got.length, want.length, `${what}: length`);
  let d = 0;
  let m = 0;
  for (let i = 0; i < got.length; i++) {
    if (!Number.isFinite(got[i])) throw new Error(`${what}: element ${i} is ${got[i]}`);
    d = Math.max(d, Math.abs(got[i] - want[i]));
    m = Math.max(m, Math.abs(want[i]));
  }
  assert.ok(m > 0, `${what}: the reference map is all zero (a test that cannot fail)`);
  return d / m;
}

test('tiny conv net: Grad-CAM at four layers matches a float64 reference (predicted and given classes)', async () => {
  const rng = new rk.Rng(7);
  const net = new TinyNet(rng);
  const bn = net.features.at<nn.BatchNorm2d>(1);
  const r = seededRandom(11);
  rk.writeTensor(bn.runningMean, refRandn(4, r, 0.3));
  rk.writeTensor(bn.runningVar, randu(4, r, 0.5, 2));
  rk.writeTensor(bn.weight!, randu(4, r, 0.5, 1.5));
  rk.writeTensor(bn.bias!, refRandn(4, r, 0.2));
  const xShape = [3, 2, 9, 10];
  const xs = refRandn(3 * 2 * 9 * 10, r);
  const x = rk.tensor(Float32Array.from(xs), xShape);
  const x64 = Float64Array.from(Float32Array.from(xs));
  const tracked = bn.numBatchesTracked;
  const live = rk.memoryStats().liveBytes;
  for (const classes of [null, Int32Array.from([2, 0, 1])]) {
    const ref = await tinyReference(net, x64, xShape, classes);
    for (const layer of ['features.conv1', 'features.bn1', 'features.conv2', 'features.relu2']) {
      const got = await gradCam(net, x, { layer, classIndex: classes ? [...classes] : undefined });
      assert.equal([...got.classIndex], [...ref.classes], `${layer}: target classes`);
      const e = relMax(got.maps, ref.maps[layer], layer);
      const el = relMax(got.logits, ref.logits, 'logits');
      report.push(`tiny net ${layer.padEnd(15)} classes ${classes ? 'given    ' : 'predicted'}  map ${got.shape.join('x')}  max|diff|/max|ref| ${e.toExponential(1)} (abs ${absMax(got.maps, ref.maps[layer])})  logits ${el.toExponential(1)}`);
      assert.ok(e < 1e-5, `${layer}: max abs diff / max |ref| = ${e.toExponential(2)} >= 1e-5`);
      assert.ok(el < 1e-5, `${layer}: logits ${el.toExponential(2)}`);
      for (let n = 0; n < 3; n++) assert.ok(Math.abs(got.probs.subarray(n * 3, n * 3 + 3).reduce((a, b) => a + b, 0) - 1) < 1e-5, 'softmax probabilities sum to 1');
    }
  }
  // the default layer of a model with a `features` Sequential is its last child
  assert.is(defaultCamLayer(net), 'features.relu2');
  // state restored: training mode, parameters require grad, no parameter gradient, BN not updated, no leak
  assert.ok(net.training && net.features.at(1).training, 'training flags restored');
  for (const p of net.parameters()) {
    assert.ok(p.requiresGrad, `${p.name} requires grad again`);
    assert.is(p.grad, null, `${p.name}.grad untouched`);
  }
  assert.is(bn.numBatchesTracked, tracked, 'BN ran in eval mode');
  assert.is(rk.memoryStats().liveBytes, live, 'every GPU buffer made by gradCam was released');
  x.dispose();
  net.dispose();
});

test('gradCam: clear errors for a bad layer, class, input or scope', async () => {
  const net = new TinyNet(new rk.Rng(3));
  const x = rk.randn([2, 2, 6, 6]);
  const flat = rk.randn([2, 36]);
  const resnet = createModel('resnet18', { smallInput: true, width: 0.0625, numClasses: 2, inChannels: 2 });
  const live = rk.memoryStats().liveBytes;
  const rejects = async (p: Promise<unknown>, re: RegExp) => {
    try {
      await p;
    } catch (e) {
      assert.match((e as Error).message, re);
      return;
    }
    assert.unreachable(`expected ${re}`);
  };
  await rejects(gradCam(net, x, { layer: 'layer4' }), /no module named "layer4".*features\.conv1/);
  await rejects(gradCam(net, x, { classIndex: 3 }), /classIndex 3 \(image 0\).*0\.\.2/);
  await rejects(gradCam(net, x, { classIndex: [0] }), /1 entries for a batch of 2/);
  await rejects(gradCam(net, x, { layer: 'fc' }), /"fc" must output an \[N=2, C, h, w\] tensor, got \[2, 3\]/);
  await rejects(gradCam(net, flat, {}), /input must be \[N, C, H, W\]/);
  await rejects(rk.noGrad(() => gradCam(net, x)), /inside noGrad/);
  await rejects(gradCam(resnet, x, { layer: 'maxpool' }), /"maxpool" did not run/);
  assert.ok(resnet.training, 'training flag restored after an error');
  assert.ok(resnet.parameters().every((p) => p.requiresGrad && !p.grad), 'parameters restored after an error');
  assert.is(rk.memoryStats().liveBytes, live, 'nothing leaked by the failing calls');
  assert.ok(layerNames(resnet).includes('layer4.1.conv2'));
  resnet.dispose();
  net.dispose();
  x.dispose();
  flat.dispose();
});

test('gradCam at a layer that returns its own input leaves that tensor alive', async () => {
  class PassThrough extends nn.Module {
    override forward(x: rk.Tensor): rk.Tensor {
      return x;
    }
  }
  const net = new nn.Sequential(new PassThrough(), new nn.Conv2d(2, 3, 3, { rng: new rk.Rng(1) }), new nn.ReLU(), new nn.AdaptiveAvgPool2d(1), new nn.Flatten(), new nn.Linear(3, 2, { rng: new rk.Rng(2) }));
  const x = rk.randn([2, 2, 5, 5], { rng: new rk.Rng(4) });
  const live = rk.memoryStats().liveBytes;
  const r = await gradCam(net, x, { layer: '0' });
  assert.equal(r.shape, [2, 5, 5]);
  assert.ok(!x.disposed, 'the input survives');
  assert.is((await x.toArray()).length, 100);
  assert.is(rk.memoryStats().liveBytes, live);
  x.dispose();
  net.dispose();
});

test('forward hooks: see, replace and stop seeing a module output', async () => {
  const lin = new nn.Linear(2, 2);
  rk.writeTensor(lin.weight, [1, 0, 0, 1]);
  rk.writeTensor(lin.bias!, [0, 0]);
  const x = rk.tensor([1, 2], [1, 2]);
  const seen: number[][] = [];
  const removeA = lin.registerForwardHook((y) => void seen.push([...y.shape]));
  const removeB = lin.registerForwardHook((y) => rk.mulScalar(y, 10));
  assert.equal([...(await lin.call(x).toArray())], [10, 20]);
  removeB();
  removeB(); // removing twice is harmless
  assert.equal([...(await lin.call(x).toArray())], [1, 2]);
  removeA();
  lin.call(x);
  assert.equal(seen, [[1, 2], [1, 2]]);
  assert.equal([...(await lin.forward(x).toArray())], [1, 2], 'a bare forward() runs no hooks');
  lin.dispose();
});

// ------------------------------------------------------------------ the five architectures

const ARCHS: Record<string, { width: number; layer: string }> = {
  resnet18: { width: 0.0625, layer: 'layer4' },
  resnet34: { width: 0.0625, layer: 'layer4' },
  resnet50: { width: 0.0625, layer: 'layer4' },
  densenet121: { width: 0.125, layer: 'features.norm5' },
  mobilenet_v2: { width: 0.25, layer: 'features.18' },
};

test('five architectures: default layer, shapes, finite non-negative maps, state restored, no leak', async () => {
  assert.equal(Object.keys(ARCHS).sort(), modelNames().sort());
  for (const [name, a] of Object.entries(ARCHS)) {
    const model = createModel(name, { numClasses: 3, inChannels: 1, smallInput: true, width: a.width, seed: 5 });
    assert.is(defaultCamLayer(model), a.layer, `${name}: default layer`);
    const x = rk.randn([2, 1, 32, 32], { rng: new rk.Rng(9) });
    const live = rk.memoryStats().liveBytes;
    const r = await gradCam(model, x, { classIndex: [0, 2] });
    assert.is(rk.memoryStats().liveBytes, live, `${name}: no GPU memory kept`);
    const [, C, h, w] = r.layerShape;
    const side = name === 'mobilenet_v2' ? 2 : 4; // smallInput: /16 for MobileNet-V2, /8 otherwise
    assert.equal(r.shape, [2, side, side], `${name}: map shape`);
    assert.equal([h, w], [side, side]);
    assert.is(r.weights.length, 2 * C);
    assert.equal([...r.classIndex], [0, 2]);
    assert.ok(r.maps.every((v) => Number.isFinite(v) && v >= 0), `${name}: finite and non-negative`);
    assert.ok(r.logits.every(Number.isFinite) && r.probs.every((p) => p >= 0 && p <= 1));
    assert.ok(model.training && model.parameters().every((p) => p.requiresGrad && p.grad === null), `${name}: state restored`);
    report.push(`${name.padEnd(13)} default layer ${a.layer.padEnd(15)} [${r.layerShape.join(', ')}]  map max ${Math.max(...r.maps).toExponential(2)}`);
    x.dispose();
    model.dispose();
  }
});

test('five architectures: a class score that only one image region can raise is explained by that region', async () => {
  // Weights set so that the class score depends on the patch [16, 24) x [16, 24) of a 32 px image
  // and on nothing else: a fresh model's BN is the identity on zero input (running mean 0, var 1,
  // weight 1, bias 0) and its convs have no bias, every 3x3 kernel keeps only its centre tap (so no
  // conv spreads activations sideways; stride-2 layers sample pixel 2i, DenseNet's 2x2 average
  // pools stay inside their cell), and the image is zero outside the patch. So at the default layer
  // (stride 8, or 16 for MobileNet-V2) only the cell covering the patch can be non-zero. With every
  // classifier weight made positive the score rises with those activations, and Grad-CAM must put
  // all of its heat in that cell: exactly zero elsewhere, positive there.
  const S = 32;
  const img = new Float32Array(S * S);
  const rng = seededRandom(21);
  for (let y = 16; y < 24; y++) for (let x = 16; x < 24; x++) img[y * S + x] = 0.5 + rng.uniform();
  for (const [name, a] of Object.entries(ARCHS)) {
    const model = createModel(name, { numClasses: 2, inChannels: 1, smallInput: true, width: a.width, seed: 3 });
    for (const [, m] of model.namedModules())
      if (m instanceof nn.Conv2d && m.kernelSize[0] === 3) {
        const w = await m.weight.toArray();
        for (let i = 0; i < w.length; i++) if (i % 9 !== 4) w[i] = 0;
        rk.writeTensor(m.weight, w);
      }
    const fc = model.namedModules().filter(([, m]) => m instanceof nn.Linear).at(-1)![1] as nn.Linear;
    rk.writeTensor(fc.weight, (await fc.weight.toArray()).map((v) => Math.abs(v) + 1e-3));
    const x = rk.tensor(img, [1, 1, S, S]);
    const r = await gradCam(model, x, { classIndex: 1 });
    const [, h, w] = r.shape;
    const cell = S / h; // pixels per map cell
    let inside = 0;
    let outside = 0;
    for (let i = 0; i < h; i++)
      for (let j = 0; j < w; j++) {
        const v = r.maps[i * w + j];
        const hit = i * cell < 24 && (i + 1) * cell > 16 && j * cell < 24 && (j + 1) * cell > 16;
        if (hit) inside = Math.max(inside, v);
        else outside = Math.max(outside, v);
      }
    const heat = camToImageSize(r.maps, r.shape, 0, S, S);
    let best = 0;
    for (let p = 0; p < S * S; p++) if (heat[p] > heat[best]) best = p;
    const [by, bx] = [Math.floor(best / S), best % S];
    report.push(`${name.padEnd(13)} patch test: map ${h}x${w}, max in the patch cell ${inside.toExponential(2)}, max elsewhere ${outside}, upsampled peak at (${by}, ${bx})`);
    assert.ok(inside > 0, `${name}: no heat on the patch`);
    assert.is(outside, 0, `${name}: heat outside the patch cell`);
    assert.ok(by >= 16 - cell / 2 && by < 24 + cell / 2 && bx >= 16 - cell / 2 && bx < 24 + cell / 2, `${name}: upsampled peak (${by}, ${bx}) is away from the patch`);
    x.dispose();
    model.dispose();
  }
});

// ------------------------------------------------------------------ PyTorch

const TORCH_FIX = new URL('./fixtures/torch/', import.meta.url).pathname;
const CAM_FIX = new URL('./fixtures/gradcam/gradcam_torch.safetensors', import.meta.url).pathname;

test('PyTorch Grad-CAM of the same weights (test/fixtures/gradcam)', async () => {
  if (!existsSync(CAM_FIX)) {
    console.log(`  skipped: ${CAM_FIX} is missing (make it with test/fixtures/gradcam/make_gradcam_fixture.py where python3-torch is installed)`);
    return;
  }
  const st = await loadSafetensors(CAM_FIX);
  const cases = JSON.parse(st.metadata!.cases) as { name: string; fixture: string; layer: string; classes: number[] | null }[];
  assert.ok(cases.length >= 10);
  const get = (k: string) => {
    const t = st.tensors.get(k);
    if (!t) throw new Error(`${CAM_FIX}: no tensor ${k}`);
    return t;
  };
  for (const c of cases) {
    const w = await loadSafetensors(TORCH_FIX + c.fixture + '.safetensors');
    const cfg = JSON.parse(w.metadata!.config) as { model: string; width: number; small_input: boolean; in_channels: number; num_classes: number };
    const model = createModel(cfg.model, { width: cfg.width, smallInput: cfg.small_input, inChannels: cfg.in_channels, numClasses: cfg.num_classes, seed: 1 });
    copyIntoModel(model, w, c.fixture, { skip: (n) => n.startsWith('__fixture__.') });
    const inp = get(`${c.fixture}.input`);
    const x = rk.tensor(inp.data as Float32Array, inp.shape);
    const r = await gradCam(model, x, { layer: c.layer, classIndex: c.classes ?? undefined });
    assert.equal([...r.classIndex], [...(get(`${c.name}.classes`).data as Int32Array)], `${c.name}: target classes`);
    const e64 = relMax(r.maps, get(`${c.name}.maps_f64`).data as Float32Array, `${c.name} vs float64`);
    const e32 = relMax(r.maps, get(`${c.name}.maps_f32`).data as Float32Array, `${c.name} vs float32`);
    const el = relMax(r.logits, get(`${c.name}.logits`).data as Float32Array, `${c.name} logits`);
    const up = get(`${c.name}.up_f64`);
    const [N, H, W] = up.shape;
    let eu = 0;
    for (let n = 0; n < N; n++) {
      const mine = camToImageSize(r.maps, r.shape, n, H, W);
      const theirs = (up.data as Float32Array).subarray(n * H * W, (n + 1) * H * W);
      for (let p = 0; p < H * W; p++) eu = Math.max(eu, Math.abs(mine[p] - theirs[p]));
    }
    report.push(`torch ${c.name.padEnd(30)} ${c.layer.padEnd(21)} map ${r.shape.join('x')}  vs torch f64 ${e64.toExponential(1)} (abs ${absMax(r.maps, get(`${c.name}.maps_f64`).data as Float32Array)})  vs torch f32 ${e32.toExponential(1)}  upsampled+normalised max|diff| ${eu.toExponential(1)}`);
    assert.ok(e64 < 1e-4, `${c.name}: max abs diff / max |ref| vs PyTorch float64 ${e64.toExponential(2)} >= 1e-4`);
    assert.ok(e32 < 1e-4, `${c.name}: vs PyTorch float32 ${e32.toExponential(2)} >= 1e-4`);
    assert.ok(el < 1e-4, `${c.name}: logits ${el.toExponential(2)}`);
    assert.ok(eu < 1e-4, `${c.name}: upsampled normalised map max abs diff ${eu.toExponential(2)} >= 1e-4`);
    x.dispose();
    model.dispose();
  }
});

// ------------------------------------------------------------------ rendering

test('render: bilinear upsampling, normalisation, colour maps', () => {
  // half-pixel-centre bilinear: [0, 1] -> 4 samples at src -0.25 (clamped), 0.25, 0.75, 1.25 (clamped)
  assert.equal([...upsampleBilinear([0, 1], 1, 2, 1, 4)], [0, 0.25, 0.75, 1]);
  assert.equal([...upsampleBilinear([0, 1, 2, 3], 2, 2, 2, 2)], [0, 1, 2, 3], 'same size is the identity');
  assert.ok(upsampleBilinear([5, 5, 5, 5, 5, 5], 2, 3, 7, 9).every((v) => Math.abs(v - 5) < 1e-6), 'constant stays constant');
  // 2x2 -> 4x4 centre value: the mean of the four corners
  const u = upsampleBilinear([0, 4, 8, 12], 2, 2, 4, 4);
  assert.ok(Math.abs(u[5] - (0 * 0.5625 + 4 * 0.1875 + 8 * 0.1875 + 12 * 0.0625)) < 1e-6);
  assert.throws(() => upsampleBilinear([1, 2, 3], 2, 2, 4, 4), /3 values for a 2x2 map/);
  const nm = normalizeMap([2, 4, 6]);
  assert.ok(Math.abs(nm[0]) < 1e-9 && Math.abs(nm[1] - 0.5) < 1e-6 && Math.abs(nm[2] - 1) < 1e-6);
  assert.equal([...normalizeMap([0, 0, 0])], [0, 0, 0], 'an all-zero map stays zero');
  assert.throws(() => normalizeMap([0, NaN]), /element 1 is NaN/);
  // matplotlib's jet: 0 -> (0, 0, 0.5), 0.5 -> (0.484, 1, 0.484), 1 -> (0.5, 0, 0)
  assert.equal(colormap(0, 'jet'), [0, 0, 128]);
  assert.equal(colormap(0.5, 'jet'), [123, 255, 123]);
  assert.equal(colormap(1, 'jet'), [128, 0, 0]);
  assert.equal(colormap(2, 'jet'), colormap(1, 'jet'), 'clamped');
  // matplotlib's hot: 0 -> (0.0416, 0, 0), 0.365079 -> (1, 0, 0), 0.746032 -> (1, 1, 0), 1 -> white
  assert.equal(colormap(0, 'hot'), [11, 0, 0]);
  assert.equal(colormap(0.746032, 'hot'), [255, 255, 0]);
  assert.equal(colormap(1, 'hot'), [255, 255, 255]);
  assert.throws(() => colormap(0.5, 'viridis' as never), /unknown colour map "viridis"/);
  const c = colorize([0, 1], 2, 1);
  assert.equal([...c.data], [0, 0, 128, 255, 128, 0, 0, 255]);
});

test('render: overlay, figure with colour bar, .npy and PNG files', async () => {
  const grey: Image8 = { data: Uint8Array.from([0, 100, 200, 255]), width: 2, height: 2, channels: 1 };
  const heat = [0, 1, 0.5, 0];
  const a0 = overlayHeatmap(grey, heat, { alpha: 0 });
  assert.equal([...a0.data.subarray(4, 8)], [100, 100, 100, 255], 'alpha 0: the image (grey to RGB)');
  const a1 = overlayHeatmap(grey, heat, { alpha: 1 });
  assert.equal([...a1.data.subarray(4, 8)], [128, 0, 0, 255], 'alpha 1: the colour');
  const ah = overlayHeatmap(grey, heat);
  assert.equal([...ah.data.subarray(4, 8)], [114, 50, 50, 255], 'alpha 0.5: the mean');
  assert.throws(() => overlayHeatmap(grey, [0, 1]), /heat map has 2 values, the image is 2x2/);
  assert.throws(() => overlayHeatmap({ ...grey, channels: 3 }, heat), /4 bytes for a 2x2x3 image/);
  assert.equal([...imageFromChw(Uint8Array.from([1, 2, 10, 20, 100, 200]), 3, 1, 2).data], [1, 10, 100, 2, 20, 200], 'planar to interleaved');

  // a 28 px RGB image and a 4x4 map peaking at its top-left cell
  const S = 28;
  const rgb: Image8 = { data: new Uint8Array(S * S * 3).fill(90), width: S, height: S, channels: 3 };
  const map = new Float32Array(16);
  map[0] = 3;
  map[1] = 1;
  const fig = renderCamFigure(rgb, map, 4, 4);
  const scale = Math.ceil(224 / S);
  assert.ok(fig.width > S * scale && fig.height > S * scale, `figure ${fig.width}x${fig.height}`);
  assert.is(fig.data.length, fig.width * fig.height * 4);
  const at = (x: number, y: number) => [...fig.data.subarray((y * fig.width + x) * 4, (y * fig.width + x) * 4 + 3)];
  const pad = (fig.height - S * scale) / 2;
  // the heat is red-ish at the top-left, the image blended with jet(0) (dark blue) at the bottom-right
  const tl = at(pad, pad);
  const br = at(pad + S * scale - 1, pad + S * scale - 1);
  assert.ok(tl[0] > tl[2] + 40, `top-left should be warm, got ${tl}`);
  assert.equal(br, [45, 45, 109], 'bottom-right: 0.5 * 90 + 0.5 * jet(0)');
  // colour bar: jet(1) at the top, jet(0) at the bottom
  const bx = pad + S * scale + pad + 1;
  assert.equal(at(bx, pad), [...colormap(1)]);
  assert.equal(at(bx, pad + S * scale - 1), [...colormap(0)]);
  // tick labels are drawn: some black pixel right of the bar
  let black = 0;
  for (let y = 0; y < fig.height; y++) for (let x = bx + 10; x < fig.width; x++) if (at(x, y).every((v) => v === 0)) black++;
  assert.ok(black > 20, `tick labels drawn (${black} black pixels)`);

  // .npy: header layout, and numpy reads it back where numpy exists
  const values = Float32Array.from([0.5, -1, 3.25, 1e-8, 0, 7]);
  const npy = encodeNpy(values, [2, 3]);
  assert.equal([...npy.subarray(0, 8)], [0x93, 78, 85, 77, 80, 89, 1, 0]);
  const hl = npy[8] | (npy[9] << 8);
  assert.is((10 + hl) % 64, 0, 'data is 64-byte aligned');
  assert.match(new TextDecoder().decode(npy.subarray(10, 10 + hl)), /'descr': '<f4', 'fortran_order': False, 'shape': \(2, 3\)/);
  assert.equal([...new Float32Array(npy.slice(10 + hl).buffer)], [...values]);

  const dir = mkdtempSync(join(tmpdir(), 'roskd-cam-'));
  try {
    const cam = { maps: Float32Array.from([...map, ...map.map((v) => 2 * v)]), shape: [2, 4, 4] as [number, number, number] };
    const files = writeCamFiles(dir, 'img1', rgb, cam as never, 1, { scale: 2 });
    const png = PNG.sync.read(readFileSync(files.png));
    const want = renderCamFigure(rgb, mapOf(cam.maps, cam.shape, 1), 4, 4, { scale: 2 });
    assert.equal([png.width, png.height], [want.width, want.height]);
    assert.ok(Buffer.from(png.data).equals(Buffer.from(want.data)), 'PNG pixels are the rendered figure');
    assert.ok(encodeRgbaPng(want).equals(readFileSync(files.png)));
    const raw = readFileSync(files.npy);
    assert.equal([...new Float32Array(raw.buffer.slice(raw.byteOffset + raw.length - 64, raw.byteOffset + raw.length))], [...map.map((v) => 2 * v)], 'the raw map, not normalised');
    try {
      const out = execFileSync('/usr/bin/python3', ['-c', `import numpy as np; a = np.load(${JSON.stringify(files.npy)}); print(a.dtype, a.shape, float(a[0, 0]), float(a[0, 1]))`], { encoding: 'utf8' });
      assert.is(out.trim(), 'float32 (4, 4) 6.0 2.0');
    } catch (e) {
      if ((e as Error).message.includes('No module named') || (e as { code?: string }).code === 'ENOENT') console.log('  numpy check skipped: no /usr/bin/python3 with numpy');
      else throw e;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('report', () => {
  console.log(`\n${report.join('\n')}`);
});

test.run();

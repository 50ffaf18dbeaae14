// End-to-end: a tiny CNN written directly with the functional ops (conv2d, batchNorm2d with
// fused ReLU, maxPool2d, globalAvgPool2d, linear, crossEntropy) and a hand-written SGD-momentum
// update through rk.axpyInPlace learns a synthetic 4-class image task (a line segment's
// orientation: horizontal, vertical, diagonal, anti-diagonal, at a random place in noise) to
// > 90% test accuracy within about a minute. Evaluation runs BN in eval mode on the running
// statistics accumulated during training.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuInit, rk } from './helpers.ts';

const S = 12; // image side
const CLASSES = 4;

/** Images [n, 1, S, S] with a length-5 segment of the class's orientation plus Gaussian noise. */
function makeData(n: number, rng: rk.Rng): { x: Float32Array; y: Int32Array } {
  const x = new Float32Array(n * S * S);
  const y = new Int32Array(n);
  const dirs = [
    [0, 1],
    [1, 0],
    [1, 1],
    [1, -1],
  ];
  for (let i = 0; i < n; i++) {
    const c = rng.int(CLASSES);
    y[i] = c;
    const img = x.subarray(i * S * S, (i + 1) * S * S);
    for (let p = 0; p < S * S; p++) img[p] = 0.35 * rng.normal();
    const [dh, dw] = dirs[c];
    const L = 5;
    // a start such that the whole segment fits
    const h0 = 1 + rng.int(S - 2 - (dh ? L - 1 : 0));
    const w0 = dw < 0 ? L + rng.int(S - 1 - L) : 1 + rng.int(S - 2 - (dw ? L - 1 : 0));
    const bright = 1.5 + rng.uniform();
    for (let k = 0; k < L; k++) img[(h0 + k * dh) * S + (w0 + k * dw)] += bright;
  }
  return { x, y };
}

interface Net {
  params: rk.Tensor[];
  w1: rk.Tensor;
  g1: rk.Tensor;
  b1: rk.Tensor;
  m1: rk.Tensor;
  v1: rk.Tensor;
  w2: rk.Tensor;
  g2: rk.Tensor;
  b2: rk.Tensor;
  m2: rk.Tensor;
  v2: rk.Tensor;
  fw: rk.Tensor;
  fb: rk.Tensor;
}

function makeNet(rng: rk.Rng): Net {
  const kaiming = (shape: number[], fanIn: number) => rk.randn(shape, { std: Math.sqrt(2 / fanIn), rng });
  const w1 = kaiming([8, 1, 3, 3], 9);
  const w2 = kaiming([16, 8, 3, 3], 72);
  const fw = rk.randn([CLASSES, 16], { std: Math.sqrt(1 / 16), rng });
  const [g1, g2] = [rk.ones([8]), rk.ones([16])];
  const [b1, b2] = [rk.zeros([8]), rk.zeros([16])];
  const fb = rk.zeros([CLASSES]);
  const params = [w1, g1, b1, w2, g2, b2, fw, fb];
  for (const p of params) p.requireGrad();
  return { params, w1, g1, b1, w2, g2, b2, fw, fb, m1: rk.zeros([8]), v1: rk.ones([8]), m2: rk.zeros([16]), v2: rk.ones([16]) };
}

/** conv-BN-ReLU-maxpool x2, global average pool, linear: logits [n, CLASSES]. */
function forward(net: Net, x: rk.Tensor, training: boolean): rk.Tensor {
  let h = rk.conv2d(x, net.w1, null, { padding: 1 });
  h = rk.batchNorm2d(h, net.g1, net.b1, net.m1, net.v1, { training, activation: 'relu' });
  h = rk.maxPool2d(h, { kernel: 2 }); // 6x6
  h = rk.conv2d(h, net.w2, null, { padding: 1 });
  h = rk.batchNorm2d(h, net.g2, net.b2, net.m2, net.v2, { training, activation: 'relu' });
  h = rk.maxPool2d(h, { kernel: 3, stride: 2, padding: 1 }); // 3x3, overlapping windows
  h = rk.globalAvgPool2d(h); // [n, 16, 1, 1]
  return rk.linear(rk.reshape(h, [h.shape[0], 16]), net.fw, net.fb);
}

async function accuracy(net: Net, data: { x: Float32Array; y: Int32Array }): Promise<number> {
  const n = data.y.length;
  const logits = await rk.tidyAsync(async () => rk.noGrad(() => forward(net, rk.tensor(data.x, [n, 1, S, S]), false)).toArray());
  let ok = 0;
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < CLASSES; c++) if (logits[i * CLASSES + c] > logits[i * CLASSES + best]) best = c;
    if (best === data.y[i]) ok++;
  }
  return ok / n;
}

test.before(gpuInit);

test('tiny CNN (conv-BN-ReLU-maxpool x2, global pool, linear) learns line orientation to > 90%', async () => {
  const rng = new rk.Rng(Number(process.env.TEST_SEED ?? 1234));
  const train = makeData(1024, rng);
  const testSet = makeData(512, rng);
  const net = makeNet(rng);
  const velocity = net.params.map((p) => rk.zeros(p.shape));
  const lr = 0.05;
  const momentum = 0.9;
  const batch = 32;
  const before = await accuracy(net, testSet);
  const t0 = Date.now();
  let acc = 0;
  let epochs = 0;
  let lastLoss = NaN;
  while (epochs < 12 && Date.now() - t0 < 60_000) {
    for (let s = 0; s + batch <= train.y.length; s += batch) {
      const loss = rk.tidy(() => {
        const xb = rk.tensor(train.x.subarray(s * S * S, (s + batch) * S * S), [batch, 1, S, S]);
        const yb = rk.tensor(train.y.subarray(s, s + batch), [batch], 'i32');
        const l = rk.crossEntropy(forward(net, xb, true), yb);
        l.backward();
        return l;
      });
      // SGD with momentum (PyTorch form): v = momentum * v + g; p -= lr * v
      rk.noGrad(() =>
        net.params.forEach((p, i) => {
          const v = rk.add(rk.mulScalar(velocity[i], momentum), p.grad!);
          velocity[i].dispose();
          velocity[i] = v;
          rk.axpyInPlace(p, v, -lr);
          p.grad!.dispose();
          p.grad = null;
        }),
      );
      if (s === 0) lastLoss = await loss.item();
      loss.dispose();
    }
    epochs++;
    acc = await accuracy(net, testSet);
    if (acc > 0.97) break;
  }
  const secs = (Date.now() - t0) / 1000;
  console.log(`  tiny CNN: test accuracy ${(100 * before).toFixed(1)}% -> ${(100 * acc).toFixed(1)}% after ${epochs} epochs (${secs.toFixed(1)} s, loss at last epoch start ${lastLoss.toFixed(3)})`);
  assert.ok(acc > 0.9, `test accuracy ${acc} after ${epochs} epochs / ${secs.toFixed(1)} s`);
  // running statistics moved away from their initial values and stayed finite
  const m1 = await net.m1.toArray();
  const v2 = await net.v2.toArray();
  assert.ok([...m1, ...v2].every(Number.isFinite) && m1.some((v) => v !== 0), 'running statistics were updated');
  for (const t of [...net.params, ...velocity, net.m1, net.v1, net.m2, net.v2]) t.dispose();
});

test.run();

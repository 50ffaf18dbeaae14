// End to end: a 2-hidden-layer MLP learns 3-class 2-D spirals on the GPU (AdamW, cosine schedule).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuInit, rk } from './helpers.ts';

await gpuInit();
const { nn, optim } = rk;

/** Three interleaved noisy spiral arms (CS231n), n points each. */
function spirals(n: number, seed: number) {
  const rng = new rk.Rng(seed);
  const K = 3;
  const x = new Float32Array(K * n * 2);
  const y = new Int32Array(K * n);
  for (let c = 0; c < K; c++)
    for (let i = 0; i < n; i++) {
      const r = (i + 1) / n;
      const t = c * 4 + 4 * r + 0.2 * rng.normal();
      const k = c * n + i;
      x[2 * k] = r * Math.sin(t);
      x[2 * k + 1] = r * Math.cos(t);
      y[k] = c;
    }
  return { x, y, N: K * n };
}

async function accuracy(model: rk.nn.Module, x: rk.Tensor, y: Int32Array): Promise<number> {
  const logits = rk.noGrad(() => model.call(x));
  const a = await logits.toArray();
  logits.dispose();
  const C = a.length / y.length;
  let ok = 0;
  for (let i = 0; i < y.length; i++) {
    let best = 0;
    for (let c = 1; c < C; c++) if (a[i * C + c] > a[i * C + best]) best = c;
    if (best === y[i]) ok++;
  }
  return ok / y.length;
}

test('MLP (2 hidden layers) learns 3-class spirals to > 95% train and held-out accuracy', async () => {
  rk.manualSeed(0);
  const train = spirals(100, 1);
  const held = spirals(100, 2);
  const x = rk.keep(rk.tensor(train.x, [train.N, 2]));
  const y = rk.keep(rk.tensor(train.y, [train.N], 'i32'));
  const xh = rk.keep(rk.tensor(held.x, [held.N, 2]));
  const model = new nn.Sequential(new nn.Linear(2, 64), new nn.ReLU(), new nn.Linear(64, 64), new nn.ReLU(), new nn.Linear(64, 3));
  const steps = 600;
  const opt = new optim.AdamW(model.parameters(), { lr: 0.02, weightDecay: 1e-4 });
  const sched = optim.cosineWithWarmup(0.02, 20, steps, 1e-4);
  const losses: number[] = [];
  const t0 = Date.now();
  const before = rk.memoryStats().liveBytes;
  for (let s = 0; s < steps; s++) {
    opt.lr = sched(s);
    const loss = rk.tidy(() => {
      const l = rk.crossEntropy(model.call(x), y);
      l.backward();
      opt.step();
      opt.zeroGrad();
      return l;
    });
    if (s % 50 === 0 || s === steps - 1) losses.push(await loss.item());
    loss.dispose();
  }
  const ms = Date.now() - t0;
  model.eval();
  const accTrain = await accuracy(model, x, train.y);
  const accHeld = await accuracy(model, xh, held.y);
  console.log(`  spirals: loss ${losses[0].toFixed(3)} -> ${losses[losses.length - 1].toFixed(4)}, train acc ${(100 * accTrain).toFixed(1)}%, held-out ${(100 * accHeld).toFixed(1)}%, ${steps} steps in ${ms} ms (${(ms / steps).toFixed(2)} ms/step)`);
  assert.ok(losses[losses.length - 1] < 0.25 * losses[0], `loss ${losses.join(', ')}`);
  assert.ok(accTrain > 0.95, `train accuracy ${accTrain}`);
  assert.ok(accHeld > 0.95, `held-out accuracy ${accHeld}`);
  // optimizer state: two moments per parameter tensor, nothing else grew
  const paramBytes = model.parameters().reduce((a, p) => a + p.size * 4, 0);
  assert.ok(rk.memoryStats().liveBytes - before <= 4 * paramBytes, 'only the optimizer state was added');
  opt.dispose();
  model.dispose();
  for (const t of [x, y, xh]) t.dispose();
});

test.run();

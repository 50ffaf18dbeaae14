// Trains a small MLP on three noisy 2-D spirals and prints loss and accuracy.
// Run: npx tsx examples/train-mlp.ts
import * as rk from '../engine/index.ts';

await rk.init();
const { nn, optim } = rk;

// 3 classes x 200 points: interleaved spiral arms
const rng = new rk.Rng(0);
const N = 600;
const xs = new Float32Array(N * 2);
const ys = new Int32Array(N);
for (let i = 0; i < N; i++) {
  const c = i % 3;
  const r = (Math.floor(i / 3) + 1) / (N / 3);
  const t = 4 * c + 4 * r + 0.2 * rng.normal();
  [xs[2 * i], xs[2 * i + 1], ys[i]] = [r * Math.sin(t), r * Math.cos(t), c];
}
const x = rk.tensor(xs, [N, 2]);
const y = rk.tensor(ys, [N], 'i32');

const model = new nn.Sequential(new nn.Linear(2, 64), new nn.ReLU(), new nn.Linear(64, 64), new nn.ReLU(), new nn.Linear(64, 3));
const opt = new optim.AdamW(model.parameters(), { lr: 0.02, weightDecay: 1e-4 });
const steps = 500;
const lr = optim.cosineWithWarmup(0.02, 20, steps, 1e-4);

for (let step = 0; step < steps; step++) {
  opt.lr = lr(step);
  const loss = rk.tidy(() => {
    const l = rk.crossEntropy(model.call(x), y);
    l.backward();
    opt.step();
    opt.zeroGrad();
    return l;
  });
  if (step % 100 === 0 || step === steps - 1) {
    const logits = rk.noGrad(() => model.call(x));
    const p = await logits.toArray();
    logits.dispose();
    const acc = ys.filter((c, i) => p[3 * i + c] === Math.max(p[3 * i], p[3 * i + 1], p[3 * i + 2])).length / N;
    console.log(`step ${step}  loss ${(await loss.item()).toFixed(4)}  accuracy ${(100 * acc).toFixed(1)}%`);
  }
  loss.dispose();
}

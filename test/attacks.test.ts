// Adversarial attacks (kd/adversarial.ts, kd/robustness.ts): FGSM equals eps * sign(analytic pixel-space gradient) on
// a linear model (CE and multi-label BCE, through a per-channel normalisation, with clamping),
// PGD stays in the eps-ball (L-inf and L2) and the pixel range, PGD is at least as strong as
// FGSM on average, attacks leave parameters / gradients / BN running statistics / training
// flags untouched and leak nothing, robustness evaluation, and epsilon parsing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { gpuInit, rk } from './helpers.ts';
import { fgsm, pgd, parseEps, parseEpsList, formatEps, attackPixels, resolveAttack, type InputSpace } from '../kd/adversarial.ts';
import { evaluateRobustness, parseAttackArg } from '../kd/robustness.ts';
import { Rng } from '../engine/rng.ts';

const nn = rk.nn;

test.before(async () => {
  await gpuInit();
});

// ---------------------------------------------------------------- helpers

const SPACE: InputSpace = { mean: [0.4, 0.55], std: [0.2, 0.3] };
const [B, CH, H, W] = [6, 2, 5, 4];
const D = CH * H * W;
const K = 3;

/** Pixels in [0, 1] with some exactly at / near the bounds so clamping matters at eps 8/255. */
function pixels(seed: number, n = B): Float32Array {
  const r = Rng.keyed('pix', seed);
  return Float32Array.from({ length: n * D }, (_, i) => (i % 7 === 0 ? 0 : i % 7 === 1 ? 1 : i % 7 === 2 ? 0.01 : i % 7 === 3 ? 0.99 : r.next()));
}

function normalised(p: Float32Array): Float32Array {
  const hw = H * W;
  return Float32Array.from(p, (v, i) => (v - SPACE.mean[Math.floor(i / hw) % CH]) / SPACE.std[Math.floor(i / hw) % CH]);
}

function linearModel(seed: number, out = K): rk.nn.Module {
  return new nn.Sequential(new nn.Flatten(), new nn.Linear(D, out, { rng: new rk.Rng(seed) }));
}

/** CPU float64 pixel-space gradient of the summed loss of a linear model (CE or BCE). */
async function analyticGrad(model: rk.nn.Module, p: Float32Array, n: number, y: Int32Array | Float32Array): Promise<Float64Array> {
  const [, lin] = model.children() as [unknown, rk.nn.Linear];
  const Wt = await lin.weight.toArray();
  const bt = await lin.bias!.toArray();
  const O = lin.outFeatures;
  const x = normalised(p);
  const g = new Float64Array(n * D);
  const hw = H * W;
  for (let i = 0; i < n; i++) {
    const z = new Float64Array(O);
    for (let o = 0; o < O; o++) {
      let s = bt[o];
      for (let d = 0; d < D; d++) s += Wt[o * D + d] * x[i * D + d];
      z[o] = s;
    }
    const dz = new Float64Array(O);
    if (y instanceof Float32Array) for (let o = 0; o < O; o++) dz[o] = 1 / (1 + Math.exp(-z[o])) - y[i * O + o];
    else {
      const m = Math.max(...z);
      const e = z.map((v) => Math.exp(v - m));
      const se = e.reduce((a, b) => a + b, 0);
      for (let o = 0; o < O; o++) dz[o] = e[o] / se - (o === y[i] ? 1 : 0);
    }
    for (let d = 0; d < D; d++) {
      let s = 0;
      for (let o = 0; o < O; o++) s += Wt[o * D + d] * dz[o];
      g[i * D + d] = s / SPACE.std[Math.floor(d / hw) % CH]; // d/dp = d/dx / std_c
    }
  }
  return g;
}

async function snapshot(model: rk.nn.Module): Promise<Map<string, Float32Array | number | null>> {
  const s = new Map<string, Float32Array | number | null>();
  for (const [n, t] of model.namedParameters()) {
    s.set(n, await t.toArray());
    s.set(`${n}.grad`, t.grad ? await t.grad.toArray() : null);
  }
  for (const [n, t] of model.namedBuffers()) s.set(n, await t.toArray());
  for (const [n, b] of model.namedIntBuffers()) s.set(n, b.value);
  return s;
}

// ---------------------------------------------------------------- epsilon parsing

test('eps parsing: fractions, decimals, exponents, lists, formatting, clear errors', () => {
  assert.is(parseEps('2/255'), 2 / 255);
  assert.is(parseEps(' 8 / 255 '), 8 / 255);
  assert.is(parseEps('0.03'), 0.03);
  assert.is(parseEps('1e-2'), 0.01);
  assert.is(parseEps('.5/255'), 0.5 / 255);
  assert.is(parseEps(0.1), 0.1);
  assert.is(parseEps('0'), 0);
  assert.equal(parseEpsList('1/255, 2/255,4/255,8/255'), [1 / 255, 2 / 255, 4 / 255, 8 / 255]);
  assert.is(formatEps(2 / 255), '2/255');
  assert.is(formatEps(0.5 / 255), '0.5/255');
  assert.is(formatEps(0.03), '0.03');
  for (const bad of ['abc', '-1/255', '2/0', '8', '', '2/255/3', '1/-255'])
    assert.throws(() => parseEps(bad), (e: Error) => e instanceof RangeError && e.message.includes(JSON.stringify(bad)), `should reject ${bad}`);
  assert.throws(() => parseEps('8'), /8\/255, not 8/);
  assert.throws(() => parseEpsList(' , '), /empty/);
  assert.throws(() => resolveAttack({ kind: 'fgsm', eps: '2/255', norm: 'l2' }), /L-inf/);
  assert.throws(() => resolveAttack({ kind: 'pgd', eps: '2/255', steps: 0 }), /steps/);
  const a = parseAttackArg('pgd', '4/255:steps=20:step=1/255:norm=l2:n=50');
  assert.equal(a.spec, { kind: 'pgd', eps: 4 / 255, steps: 20, stepSize: 1 / 255, norm: 'l2' });
  assert.is(a.limit, 50);
  assert.is(resolveAttack({ kind: 'pgd', eps: 4 / 255 }).stepSize, (2.5 * 4) / 255 / 10);
  assert.throws(() => parseAttackArg('pgd', '2/255:bogus=1'), /unknown key "bogus"/);
});

// ---------------------------------------------------------------- FGSM = eps * sign(analytic gradient)

for (const task of ['multiclass', 'multilabel'] as const)
  test(`fgsm on a linear model (${task}): perturbation = eps * sign(analytic pixel gradient), then clamped to [0, 1]`, async () => {
    const model = linearModel(task === 'multiclass' ? 1 : 2);
    const p = pixels(3);
    const yArr = task === 'multiclass' ? Int32Array.from({ length: B }, (_, i) => i % K) : Float32Array.from({ length: B * K }, (_, i) => (i * 7) % 3 === 0 ? 1 : 0);
    const x = rk.tensor(normalised(p), [B, CH, H, W]);
    const y = yArr instanceof Int32Array ? rk.tensor(yArr, [B], 'i32') : rk.tensor(yArr, [B, K]);
    const eps = 8 / 255;
    const r = await fgsm(model, x, y, { eps: '8/255', space: SPACE });
    const g = await analyticGrad(model, p, B, yArr);
    let checked = 0;
    for (let i = 0; i < p.length; i++) {
      if (Math.abs(g[i]) < 1e-5) continue; // sign undecidable in float32
      const want = Math.min(1, Math.max(0, p[i] + eps * Math.sign(g[i])));
      assert.ok(Math.abs(r.pixels[i] - want) < 1e-6, `pixel ${i}: got ${r.pixels[i]}, want ${want} (p ${p[i]}, grad ${g[i]})`);
      checked++;
    }
    assert.ok(checked > p.length * 0.9, `checked ${checked} of ${p.length}`);
    // clamping happened somewhere, and the unclamped entries moved by exactly eps
    assert.ok([...r.pixels].some((v, i) => (v === 0 || v === 1) && Math.abs(v - p[i]) < eps - 1e-6), 'some pixels were clamped');
    // the returned tensor is the re-normalised adversarial image
    const xa = await r.x.toArray();
    const want = normalised(r.pixels);
    for (let i = 0; i < xa.length; i++) assert.ok(Math.abs(xa[i] - want[i]) < 1e-5, `x_adv[${i}] ${xa[i]} vs ${want[i]}`);
    // and the logits reported are those at x_adv
    const z = await rk.noGrad(() => model.call(r.x)).toArray();
    for (let i = 0; i < z.length; i++) assert.ok(Math.abs(z[i] - r.logits[i]) < 1e-4);
    for (const t of [x, y, r.x]) t.dispose();
    model.dispose();
  });

test('fgsm with the identity space: eps in the model\'s own input units', async () => {
  const model = linearModel(5);
  const p = pixels(4);
  const x = rk.tensor(p, [B, CH, H, W]);
  const y = rk.tensor(Int32Array.from({ length: B }, (_, i) => (i + 1) % K), [B], 'i32');
  const r = await fgsm(model, x, y, { eps: 0.02 });
  for (let i = 0; i < p.length; i++) assert.ok(Math.abs(r.pixels[i] - p[i]) <= 0.02 + 1e-7);
  for (const t of [x, y, r.x]) t.dispose();
  model.dispose();
});

// ---------------------------------------------------------------- PGD: ball, range, strength

function mlp(seed: number): rk.nn.Module {
  const rng = new rk.Rng(seed);
  return new nn.Sequential(new nn.Flatten(), new nn.Linear(D, 16, { rng }), new nn.ReLU(), new nn.Linear(16, K, { rng }));
}

for (const norm of ['linf', 'l2'] as const)
  test(`pgd (${norm}) never leaves the eps-ball or the pixel range, with and without random start`, async () => {
    const model = mlp(7);
    const p = pixels(8);
    const y = Int32Array.from({ length: B }, (_, i) => i % K);
    const eps = norm === 'linf' ? 4 / 255 : 0.5;
    for (const randomStart of [true, false])
      for (const keepBest of [true, false]) {
        const r = await attackPixels(model, p, [B, CH, H, W], y, { kind: 'pgd', eps, steps: 5, stepSize: norm === 'linf' ? 2 / 255 : 0.3, randomStart, norm, seed: 3, keepBest }, SPACE);
        let moved = 0;
        for (let b = 0; b < B; b++) {
          let n2 = 0;
          let ninf = 0;
          for (let k = b * D; k < (b + 1) * D; k++) {
            const d = r.pixels[k] - p[k];
            assert.ok(r.pixels[k] >= 0 && r.pixels[k] <= 1, `pixel ${k} = ${r.pixels[k]} outside [0, 1]`);
            n2 += d * d;
            ninf = Math.max(ninf, Math.abs(d));
          }
          const n = norm === 'linf' ? ninf : Math.sqrt(n2);
          assert.ok(n <= eps * (1 + 1e-5) + 1e-7, `sample ${b}: ${norm} distance ${n} > eps ${eps}`);
          moved += n;
        }
        assert.ok(moved > 0, 'the attack moved the images');
      }
    model.dispose();
  });

test('pgd with more steps raises the loss at least as much as fgsm (on average) and lowers accuracy as much', async () => {
  const model = mlp(11);
  const n = 48;
  const p = pixels(12, n);
  // labels = the clean predictions, so the clean accuracy is 100% and attacks have room
  const z0 = await rk.noGrad(() => model.call(rk.tensor(normalised(p), [n, CH, H, W]))).toArray();
  const y = Int32Array.from({ length: n }, (_, i) => [0, 1, 2].reduce((a, c) => (z0[i * K + c] > z0[i * K + a] ? c : a), 0));
  const eps = 4 / 255;
  const shape = [n, CH, H, W];
  const f = await attackPixels(model, p, shape, y, { kind: 'fgsm', eps }, SPACE);
  const g = await attackPixels(model, p, shape, y, { kind: 'pgd', eps, steps: 10, seed: 1 }, SPACE);
  const g1 = await attackPixels(model, p, shape, y, { kind: 'pgd', eps, steps: 1, stepSize: eps, randomStart: false, keepBest: false }, SPACE);
  const mean = (a: Float64Array) => a.reduce((s, v) => s + v, 0) / a.length;
  const wrong = (z: Float32Array) => y.reduce((s, yi, i) => s + ([0, 1, 2].reduce((a, c) => (z[i * K + c] > z[i * K + a] ? c : a), 0) !== yi ? 1 : 0), 0);
  assert.ok(mean(g.loss) >= mean(f.loss) - 1e-6, `pgd mean loss ${mean(g.loss)} < fgsm ${mean(f.loss)}`);
  assert.ok(wrong(g.logits) >= wrong(f.logits), `pgd fooled ${wrong(g.logits)} < fgsm ${wrong(f.logits)}`);
  // one PGD step of size eps from the clean point without random start is FGSM
  for (let i = 0; i < f.pixels.length; i++) assert.ok(Math.abs(f.pixels[i] - g1.pixels[i]) < 1e-7);
  model.dispose();
});

// ---------------------------------------------------------------- the model is left as it was

function tinyCnn(): rk.nn.Module {
  const rng = new rk.Rng(21);
  return new nn.Sequential(
    new nn.Conv2d(CH, 4, 3, { padding: 1, rng }),
    new nn.BatchNorm2d(4),
    new nn.ReLU(),
    new nn.Flatten(),
    new nn.Linear(4 * H * W, K, { rng }),
  );
}

test('attacks change no parameter, gradient, BN running statistic or training flag, and leak nothing', async () => {
  const model = tinyCnn();
  // some training first: non-trivial running stats and existing parameter gradients
  model.train();
  for (let s = 0; s < 2; s++)
    rk.tidy(() => {
      const x = rk.tensor(normalised(pixels(30 + s)), [B, CH, H, W]);
      rk.crossEntropy(model.call(x), rk.tensor(Int32Array.from({ length: B }, (_, i) => i % K), [B], 'i32')).backward();
    });
  const before = await snapshot(model);
  assert.ok(before.get('0.weight.grad'), 'gradients exist before the attack');
  const bnModule = model.children()[1];
  bnModule.eval(); // a mixed-mode model: the attack must restore each module's own flag
  const live0 = rk.memoryStats().liveBytes;
  const x = rk.tensor(normalised(pixels(40)), [B, CH, H, W]);
  const y = rk.tensor(Int32Array.from({ length: B }, (_, i) => (i + 2) % K), [B], 'i32');
  const r1 = await fgsm(model, x, y, { eps: '4/255', space: SPACE });
  const r2 = await pgd(model, x, y, { eps: '4/255', steps: 3, space: SPACE, seed: 2 });
  const r3 = await pgd(model, x, y, { eps: 0.3, steps: 2, norm: 'l2', space: SPACE });
  for (const t of [x, y, r1.x, r2.x, r3.x]) t.dispose();
  assert.is(rk.memoryStats().liveBytes, live0, 'every tensor the attacks made was released');
  const after = await snapshot(model);
  for (const [k, v] of before) assert.equal(after.get(k), v, `${k} changed`);
  assert.ok(model.training && model.children()[0].training && !bnModule.training, 'training flags restored per module');
  for (const p of model.parameters()) assert.ok(p.requiresGrad, `${p.name} requires grad again`);
  // autograd on the parameters still works afterwards (fresh AccumulateGrad nodes)
  model.zeroGrad();
  rk.tidy(() => rk.crossEntropy(model.call(rk.tensor(normalised(pixels(41)), [B, CH, H, W])), rk.tensor(new Int32Array(B), [B], 'i32')).backward());
  assert.ok(model.parameters().every((p) => p.grad), 'parameters get gradients after the attack');
  model.dispose();
});

test('attacks refuse to run under noGrad and restore the model after an error', async () => {
  const model = linearModel(9);
  const x = rk.tensor(normalised(pixels(1)), [B, CH, H, W]);
  const y = rk.tensor(new Int32Array(B), [B], 'i32');
  await rk.noGradAsync(async () => {
    let err: Error | null = null;
    try {
      await fgsm(model, x, y, { eps: '2/255', space: SPACE });
    } catch (e) {
      err = e as Error;
    }
    assert.match(err?.message ?? '', /noGrad/);
  });
  const bad = rk.tensor(new Int32Array(B + 1), [B + 1], 'i32');
  let err: Error | null = null;
  try {
    await fgsm(model, x, bad, { eps: '2/255', space: SPACE });
  } catch (e) {
    err = e as Error;
  }
  assert.match(err?.message ?? '', /labels/);
  assert.ok(model.training && model.parameters().every((p) => p.requiresGrad));
  for (const t of [x, y, bad]) t.dispose();
  model.dispose();
});

// ---------------------------------------------------------------- evaluation

test('evaluateRobustness: clean vs attacked metrics, eps 0 = clean, stronger attacks hurt more, subset limit', async () => {
  const model = mlp(13);
  const n = 40;
  const images = Uint8Array.from({ length: n * D }, (_, i) => Math.round(pixels(50, n)[i] * 255));
  // labels = clean predictions on most images so the clean accuracy is high
  const p = Float32Array.from(images, (v) => v / 255);
  const z0 = await rk.noGrad(() => model.call(rk.tensor(normalised(p), [n, CH, H, W]))).toArray();
  const labels = Int32Array.from({ length: n }, (_, i) => (i % 10 === 0 ? (i / 10) % K : [0, 1, 2].reduce((a, c) => (z0[i * K + c] > z0[i * K + a] ? c : a), 0)));
  const ds = { channels: CH, height: H, width: W, mean: [...SPACE.mean], std: [...SPACE.std], task: 'multiclass' as const, classes: ['a', 'b', 'c'] };
  const r = await evaluateRobustness(model, { images, labels, n }, ds, {
    batchSize: 16,
    attacks: [{ kind: 'fgsm', eps: 0 }, { kind: 'fgsm', eps: '8/255' }, { kind: 'pgd', eps: '8/255', steps: 5 }],
  });
  assert.is(r.n, n);
  assert.ok(r.clean.accuracy >= 0.85, `clean acc ${r.clean.accuracy}`);
  assert.ok(Math.abs(r.attacks[0].accuracy - r.clean.accuracy) < 1e-9 && Math.abs(r.attacks[0].loss - r.clean.loss) < 1e-5, 'eps 0 changes nothing');
  assert.ok(r.attacks[1].accuracy < r.clean.accuracy, 'fgsm 8/255 hurts');
  assert.ok(r.attacks[2].accuracy <= r.attacks[1].accuracy, 'pgd at least as strong as fgsm');
  assert.ok(r.attacks[2].loss >= r.attacks[1].loss - 1e-6);
  for (const a of r.attacks) assert.ok(Number.isFinite(a.macroF1) && Number.isFinite(a.auc));
  // multi-label: BCE attack, per-label metrics, 0/1 labels kept as Uint8Array
  const ml = { ...ds, task: 'multilabel' as const };
  const mlLabels = Uint8Array.from({ length: n * K }, (_, i) => (z0[i] > 0 ? 1 : 0));
  const rm = await evaluateRobustness(model, { images, labels: mlLabels, n }, ml, { attacks: [{ kind: 'pgd', eps: '8/255', steps: 3 }] });
  assert.ok(rm.clean.accuracy > 0.99, `labels = clean predictions: ${rm.clean.accuracy}`);
  assert.ok(rm.attacks[0].accuracy < rm.clean.accuracy && rm.attacks[0].loss > rm.clean.loss && Number.isFinite(rm.attacks[0].auc));
  const sub = await evaluateRobustness(model, { images, labels, n }, ds, { attacks: [{ kind: 'fgsm', eps: '2/255' }], limit: 10, seed: 4 });
  assert.is(sub.n, 10);
  assert.is(sub.indices!.length, 10);
  assert.equal(sub.indices, [...sub.indices!].sort((a, b) => a - b));
  model.dispose();
});

test.run();

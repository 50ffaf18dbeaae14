// Training-step ops besides conv: batch norm (train mode, forward + backward), the softmax KD
// loss (forward + backward) and one AdamW step over ResNet-18's 11.7M parameters. These are
// memory bound: `work` is the minimum bytes a fused implementation must move.
import * as rk from '../engine/index.ts';
import * as ops from './ops.ts';
import { all, compareAll, compareSampled, randomData, sampleIndices, seededRandom, pass, fail } from './check.ts';
import { batchNorm2dTrain, batchNorm2dBackward } from '../test/reference/norm.ts';
import { kdLoss as kdLossRef } from '../test/reference/kd.ts';
import type { Case } from './harness.ts';
import type * as TF from '@tensorflow/tfjs-core';

/** Clears the .grad of leaves between timed runs (so each run writes fresh gradients). */
function clearGrads(ts: rk.Tensor[]): void {
  for (const t of ts) {
    t.grad?.dispose();
    t.grad = null;
  }
}

function bnCase(N: number, C: number, H: number, W: number, quick: boolean): Case {
  const n = N * C * H * W;
  return {
    name: `batchnorm train fwd+bwd ${N}x${C}x${H}x${W}`,
    kind: 'memory',
    // forward: read x for the statistics, read x + write y; backward: read x, gy for the sums, read x, gy + write dx
    work: 8 * 4 * n,
    quick,
    needs: () => ops.missingGrad('batchNorm2d'),
    torch: { op: 'bn', N, C, H, W },
    async setup({ tf }) {
      const rng = seededRandom(C * H);
      const X = randomData(n, rng, 2);
      const G = Float64Array.from({ length: C }, () => Math.fround(1 + 0.5 * rng.normal()));
      const B = Float64Array.from({ length: C }, () => Math.fround(0.5 * rng.normal()));
      const GY = randomData(n, rng);
      const shape = [N, C, H, W];
      const x = rk.tensor(X.f32, shape).requireGrad();
      const gamma = rk.tensor(Float32Array.from(G), [C]).requireGrad();
      const beta = rk.tensor(Float32Array.from(B), [C]).requireGrad();
      const state: ops.BnState = { gamma, beta, runMean: rk.zeros([C]), runVar: rk.ones([C]) };
      const gy = rk.tensor(GY.f32, shape);
      const leaves = [x, gamma, beta];

      // tfjs-core ships no gradient registrations outside the @tensorflow/tfjs union package, so
      // its peer is the same maths written out: forward through tf.batchNorm, backward
      // dx = gamma * invStd / m * (m * gy - sum(gy) - xhat * sum(gy * xhat)).
      let peer: { run(): void; dispose(): void } | null = null;
      if (tf) {
        const xt = tf.tensor(X.f32, [N, H, W, C]);
        const g = tf.ones([C]);
        const b = tf.zeros([C]);
        const dy = tf.tensor(GY.f32, [N, H, W, C]);
        const m = N * H * W;
        peer = {
          run() {
            const { mean, variance } = tf.moments(xt, [0, 1, 2]);
            tf.batchNorm(xt, mean, variance, b, g, 1e-5);
            const invStd = tf.rsqrt(tf.add(variance, 1e-5));
            const xhat = tf.mul(tf.sub(xt, mean), invStd);
            const sumGy = tf.sum(dy, [0, 1, 2]);
            const sumGyXhat = tf.sum(tf.mul(dy, xhat), [0, 1, 2]);
            tf.mul(tf.mul(g, tf.div(invStd, m)), tf.sub(tf.sub(tf.mul(dy, m), sumGy), tf.mul(xhat, sumGyXhat)));
          },
          dispose: () => tf.dispose([xt, g, b, dy]),
        };
      }
      return {
        roskd: {
          run: () => rk.tidy(() => ops.batchNorm2dTrain(x, state).backward(gy)),
          after: () => clearGrads(leaves),
        },
        tfjs: peer ? { run: peer.run } : undefined,
        async check() {
          const y = ops.batchNorm2dTrain(x, state);
          const got = await y.toArray();
          y.backward(gy);
          y.dispose();
          if (!x.grad || !gamma.grad || !beta.grad) return fail('backward left x, gamma or beta without .grad');
          const [dx, dg, db] = await Promise.all([x.grad.toArray(), gamma.grad.toArray(), beta.grad.toArray()]);
          clearGrads(leaves);
          const ref = batchNorm2dTrain(X.f64, shape, G, B);
          const bwd = batchNorm2dBackward(X.f64, shape, G, GY.f64);
          return all(compareAll('y', got, ref.y, 1e-3), compareAll('dx', dx, bwd.dx, 1e-3), compareAll('dgamma', dg, bwd.dgamma, 1e-3), compareAll('dbeta', db, bwd.dbeta, 1e-3));
        },
        dispose() {
          clearGrads(leaves);
          for (const t of [x, gamma, beta, state.runMean, state.runVar, gy]) t.dispose();
          peer?.dispose();
        },
      };
    },
  };
}

function kdCase(N: number, C: number): Case {
  const T = 4;
  const alpha = 0.7;
  return {
    name: `kd loss fwd+bwd ${N}x${C}`,
    kind: 'memory',
    // forward reads zs, zt; backward reads zs, zt and writes dzs
    work: 5 * 4 * N * C,
    quick: true,
    needs: () => ops.missingGrad('kdLoss'),
    torch: { op: 'kd', N, C, T, alpha },
    async setup({ tf }) {
      const rng = seededRandom(N + C);
      const ZS = randomData(N * C, rng, 3);
      const ZT = randomData(N * C, rng, 3);
      const Y = Int32Array.from({ length: N }, () => Math.floor(rng.uniform() * C));
      const zs = rk.tensor(ZS.f32, [N, C]).requireGrad();
      const zt = rk.tensor(ZT.f32, [N, C]);
      const labels = rk.tensor(Y, [N], 'i32');

      let tfRun: (() => void) | undefined;
      let tfDispose = (): void => {};
      if (tf) {
        const zsT = tf.tensor(ZS.f32, [N, C]);
        const ztT = tf.tensor(ZT.f32, [N, C]);
        const oneHot = tf.tidy(() => tf.oneHot(tf.tensor1d(Y, 'int32'), C));
        // Forward loss and the analytic gradient written out (tfjs-core alone has no gradients):
        // dzs = [(1 - alpha)(softmax(zs) - onehot) + alpha T (softmax(zs / T) - softmax(zt / T))] / N.
        tfRun = () => {
          const lp = tf.logSoftmax(zsT);
          const lps = tf.logSoftmax(tf.div(zsT, T));
          const lpt = tf.logSoftmax(tf.div(ztT, T));
          const pt = tf.exp(lpt);
          const ce = tf.neg(tf.mean(tf.sum(tf.mul(oneHot, lp), 1)));
          const kl = tf.mean(tf.sum(tf.mul(pt, tf.sub(lpt, lps)), 1));
          tf.add(tf.mul(ce, 1 - alpha), tf.mul(kl, alpha * T * T));
          tf.div(tf.add(tf.mul(tf.sub(tf.exp(lp), oneHot), 1 - alpha), tf.mul(tf.sub(tf.exp(lps), pt), alpha * T)), N);
        };
        tfDispose = () => tf.dispose([zsT, ztT, oneHot]);
      }
      return {
        roskd: {
          run: () => rk.tidy(() => ops.kdLoss(zs, zt, labels, T, alpha).backward()),
          after: () => clearGrads([zs]),
        },
        tfjs: tfRun ? { run: tfRun } : undefined,
        async check() {
          const l = ops.kdLoss(zs, zt, labels, T, alpha);
          if (l.size !== 1) return fail(`kdLoss returned ${l.describe()}, expected a scalar`);
          const got = await l.item();
          l.backward();
          l.dispose();
          if (!zs.grad) return fail('backward left zs.grad empty');
          const dz = await zs.grad.toArray();
          clearGrads([zs]);
          const ref = kdLossRef(ZS.f64, ZT.f64, Y, T, alpha);
          return all(compareAll('loss', [got], [ref.loss], 1e-4), compareAll('dzs', dz, ref.grad, 1e-3));
        },
        dispose() {
          clearGrads([zs]);
          for (const t of [zs, zt, labels]) t.dispose();
          tfDispose();
        },
      };
    },
  };
}

/** ResNet-18 (ImageNet head, 1000 classes) parameter sizes: 11,689,512 in 62 tensors. */
export function resnet18ParamSizes(): number[] {
  const sizes: number[] = [64 * 3 * 7 * 7, 64, 64];
  let cin = 64;
  for (const [c, stride] of [
    [64, 1],
    [128, 2],
    [256, 2],
    [512, 2],
  ]) {
    for (let blk = 0; blk < 2; blk++) {
      const inC = blk === 0 ? cin : c;
      sizes.push(c * inC * 9, c, c, c * c * 9, c, c);
      if (blk === 0 && (stride !== 1 || inC !== c)) sizes.push(c * inC, c, c);
    }
    cin = c;
  }
  sizes.push(1000 * 512, 1000);
  return sizes;
}

function adamwCase(): Case {
  const sizes = resnet18ParamSizes();
  const total = sizes.reduce((a, b) => a + b, 0);
  const hp = { lr: 1e-3, weightDecay: 1e-2, beta1: 0.9, beta2: 0.999, eps: 1e-8 };
  return {
    name: `adamw step ${(total / 1e6).toFixed(1)}M params (${sizes.length} tensors)`,
    kind: 'memory',
    // read p, g, m, v; write p, m, v
    work: 7 * 4 * total,
    quick: true,
    maxRepeat: 5,
    needs: () => (ops.haveAdamW() ? null : 'rk.optim.AdamW not available yet'),
    torch: { op: 'adamw', sizes },
    async setup() {
      const rng = seededRandom(18);
      const P = sizes.map((n) => randomData(n, rng, 0.05).f32);
      const G = sizes.map((n) => randomData(n, rng, 0.01).f32);
      const params = P.map((p) => rk.tensor(p, [p.length]).requireGrad());
      params.forEach((p, i) => (p.grad = rk.tensor(G[i], [G[i].length])));
      const opt = ops.adamW(params, hp);
      return {
        roskd: { run: () => opt.step() },
        async check() {
          // First step from m = v = 0: m_hat = g, v_hat = g^2, so (PyTorch's AdamW)
          // p1 = p0 * (1 - lr * wd) - lr * g / (|g| + eps). Compare the updates p1 - p0.
          opt.step();
          const checks = [];
          for (const i of [0, Math.floor(sizes.length / 2), sizes.length - 2]) {
            const got = await params[i].toArray();
            const idx = sampleIndices(got.length, 2048, rng);
            const p0 = P[i];
            const g = G[i];
            const dGot = idx.map((j) => got[j] - p0[j]);
            const dWant = idx.map((j) => p0[j] * (1 - hp.lr * hp.weightDecay) - (hp.lr * g[j]) / (Math.abs(g[j]) + hp.eps) - p0[j]);
            if (!got.every(Number.isFinite)) return fail(`param ${i}: non-finite values after the step`);
            checks.push(compareSampled(`update of param ${i}`, dGot, Array.from(dGot, (_, k) => k), dWant, 1e-3));
          }
          const c = all(...checks);
          return c.ok ? pass(`first-step updates of 3 tensors match (${c.detail.split(';')[0]})`) : c;
        },
        dispose() {
          clearGrads(params);
          for (const p of params) p.dispose();
          opt.dispose();
        },
      };
    },
  };
}

export function trainOpCases(): Case[] {
  return [bnCase(64, 64, 28, 28, true), kdCase(256, 14), kdCase(256, 1000), adamwCase()];
}

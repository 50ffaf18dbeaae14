// Float64 CPU reference for the knowledge-distillation losses and their analytic gradients
// with respect to the student logits. Everything goes through log-sum-exp / softplus so it
// stays finite for logits around 1e4 and temperatures from 0.5 to 20.

import { elementWeights, logSumExp, sigmoid, softplus } from './core.ts';

/** Per-sample weights -> normalised scale w_i / sum(w) (1/N when absent). */
function sampleScales(N: number, weights?: Float64Array | null): Float64Array {
  if (weights && weights.length !== N) throw new Error(`weights must have length N=${N}`);
  let sum = 0;
  for (let i = 0; i < N; i++) sum += weights ? weights[i] : 1;
  const s = new Float64Array(N);
  for (let i = 0; i < N; i++) s[i] = (weights ? weights[i] : 1) / sum;
  return s;
}

/** log softmax(v / T) of one row. */
function logSoftmaxT(row: ArrayLike<number>, T: number): Float64Array {
  const scaled = Float64Array.from(row, (v) => v / T);
  const lse = logSumExp(scaled);
  return scaled.map((v) => v - lse);
}

/**
 * Softmax KD loss over [N, C] (N = labels.length):
 *   L = sum_i s_i * [ (1-alpha) * CE(zs_i, y_i) + alpha * T^2 * KL(pt_i || softmax(zs_i/T)) ]
 * with s_i = 1/N, or w_i / sum(w) when weights are given. pt_i = softmax(zt_i / T) for teacher
 * logits. With teacherIsProb, zt holds probabilities p and pt_i = softmax(log(p_i) / T), i.e.
 * p^(1/T) renormalised, so passing p equals passing logits log(p) (at T = 1 it is p itself).
 * CE uses the untempered student logits. grad = dL/dzs = s_i * [(1-alpha)(softmax(zs) - onehot)
 * + alpha * T * (softmax(zs/T) - pt)].
 */
export function kdLoss(
  zs: Float64Array,
  zt: Float64Array,
  labels: Int32Array,
  T: number,
  alpha: number,
  weights?: Float64Array | null,
  teacherIsProb = false,
): { loss: number; grad: Float64Array; ce: number; kl: number } {
  const N = labels.length;
  if (N === 0 || zs.length % N !== 0 || zt.length !== zs.length) throw new Error('kdLoss: zs, zt must be [N, C]');
  const C = zs.length / N;
  const scale = sampleScales(N, weights);
  const grad = new Float64Array(zs.length);
  let ce = 0; // weighted mean CE (hard part, before the (1-alpha) factor)
  let kl = 0; // weighted mean T^2 * KL (soft part, before the alpha factor)

  for (let i = 0; i < N; i++) {
    const y = labels[i];
    if (y < 0 || y >= C) throw new Error(`kdLoss: label ${y} out of range [0, ${C})`);
    const sRow = zs.subarray(i * C, (i + 1) * C);
    const tRow = zt.subarray(i * C, (i + 1) * C);

    const logPs1 = logSoftmaxT(sRow, 1); // for CE
    const logPsT = logSoftmaxT(sRow, T); // for KL
    // A zero teacher probability gives log 0 = -inf, which logSoftmaxT maps to pt = 0.
    const logPt = teacherIsProb ? logSoftmaxT(Float64Array.from(tRow, Math.log), T) : logSoftmaxT(tRow, T);

    const ceI = -logPs1[y];
    let klI = 0;
    for (let c = 0; c < C; c++) {
      const pt = Math.exp(logPt[c]);
      // 0 * log 0 = 0: skip classes the teacher gives (numerically) zero mass.
      if (pt > 0) klI += pt * (logPt[c] - logPsT[c]);
    }
    ce += scale[i] * ceI;
    kl += scale[i] * T * T * klI;

    for (let c = 0; c < C; c++) {
      const dCe = Math.exp(logPs1[c]) - (c === y ? 1 : 0);
      // d(T^2 KL)/dzs = T^2 * (ps_T - pt) / T
      const dKl = T * (Math.exp(logPsT[c]) - Math.exp(logPt[c]));
      grad[i * C + c] = scale[i] * ((1 - alpha) * dCe + alpha * dKl);
    }
  }
  return { loss: (1 - alpha) * ce + alpha * kl, grad, ce, kl };
}

/**
 * Multi-label KD over N*C independent binary problems:
 *   L = sum_e s_e * [ (1-alpha) * BCEwithLogits(zs_e, t_e) + alpha * T^2 * binKL(sigmoid(zt_e/T) || sigmoid(zs_e/T)) ]
 * with s_e = 1/(N*C), or w_e / sum(w_e) where weights are per sample (length N, each shared by
 * its C classes) or per element (length N*C). Without weights N is irrelevant; with per-sample
 * weights C = zs.length / weights.length. grad_e = s_e * [(1-alpha)(sigmoid(zs) - t) + alpha*T*(sigmoid(zs/T) - sigmoid(zt/T))].
 */
export function kdLossMultiLabel(
  zs: Float64Array,
  zt: Float64Array,
  targets: Float64Array,
  T: number,
  alpha: number,
  weights?: Float64Array | null,
): { loss: number; grad: Float64Array; bce: number; kl: number } {
  const n = zs.length;
  if (zt.length !== n || targets.length !== n) throw new Error('kdLossMultiLabel: zs, zt, targets must match');
  const we = elementWeights(weights, n, weights ? weights.length : n);
  let wSum = 0;
  for (let e = 0; e < n; e++) wSum += we[e];

  const grad = new Float64Array(n);
  let bce = 0;
  let kl = 0;
  for (let e = 0; e < n; e++) {
    const s = we[e] / wSum;
    const x = zs[e];
    const t = targets[e];
    const bceE = Math.max(x, 0) - x * t + Math.log1p(Math.exp(-Math.abs(x)));

    const a = zt[e] / T; // teacher tempered logit
    const b = x / T; // student tempered logit
    // log sigmoid(u) = -softplus(-u), log(1 - sigmoid(u)) = -softplus(u): no 1 - p cancellation.
    const pt = sigmoid(a);
    const qt = sigmoid(-a); // 1 - pt
    let klE = 0;
    if (pt > 0) klE += pt * (-softplus(-a) + softplus(-b));
    if (qt > 0) klE += qt * (-softplus(a) + softplus(b));

    bce += s * bceE;
    kl += s * T * T * klE;
    // d(T^2 binKL)/dzs = T * (sigmoid(zs/T) - sigmoid(zt/T))
    grad[e] = s * ((1 - alpha) * (sigmoid(x) - t) + alpha * T * (sigmoid(b) - pt));
  }
  return { loss: (1 - alpha) * bce + alpha * kl, grad, bce, kl };
}

// Float64 CPU reference for BatchNorm2d (NCHW, statistics per channel over N, H, W),
// matching PyTorch: normalisation uses the biased variance, the running variance is
// updated with the unbiased one.

function dims(x: Float64Array, shape: readonly number[]) {
  if (shape.length !== 4) throw new Error('batchNorm2d expects a 4-D NCHW shape');
  const [N, C, H, W] = shape;
  if (x.length !== N * C * H * W) throw new Error('batchNorm2d: data length does not match shape');
  return { N, C, HW: H * W, m: N * H * W };
}

/** Per-channel mean and biased variance over N, H, W (two-pass). */
function channelStats(x: Float64Array, shape: readonly number[]) {
  const { N, C, HW, m } = dims(x, shape);
  const mean = new Float64Array(C);
  const varBiased = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    let s = 0;
    for (let n = 0; n < N; n++) for (let p = 0; p < HW; p++) s += x[(n * C + c) * HW + p];
    mean[c] = s / m;
    let q = 0;
    for (let n = 0; n < N; n++) {
      for (let p = 0; p < HW; p++) {
        const d = x[(n * C + c) * HW + p] - mean[c];
        q += d * d;
      }
    }
    varBiased[c] = q / m;
  }
  return { mean, varBiased };
}

/**
 * Training-mode batch norm: y = gamma * (x - mean) * invStd + beta with invStd = 1/sqrt(varBiased + eps).
 * gamma/beta may be null (affine=False: gamma 1, beta 0). varUnbiased = varBiased * m/(m-1), m = N*H*W.
 */
export function batchNorm2dTrain(
  x: Float64Array,
  shape: readonly number[],
  gamma: Float64Array | null,
  beta: Float64Array | null,
  eps = 1e-5,
): { y: Float64Array; mean: Float64Array; varBiased: Float64Array; varUnbiased: Float64Array; invStd: Float64Array } {
  const { N, C, HW, m } = dims(x, shape);
  const { mean, varBiased } = channelStats(x, shape);
  // PyTorch gives NaN/inf here too when m == 1; keep the same behaviour rather than hiding it.
  const varUnbiased = varBiased.map((v) => (v * m) / (m - 1));
  const invStd = varBiased.map((v) => 1 / Math.sqrt(v + eps));
  const y = new Float64Array(x.length);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const g = gamma ? gamma[c] : 1;
      const b = beta ? beta[c] : 0;
      for (let p = 0; p < HW; p++) {
        const i = (n * C + c) * HW + p;
        y[i] = g * (x[i] - mean[c]) * invStd[c] + b;
      }
    }
  }
  return { y, mean, varBiased, varUnbiased, invStd };
}

/**
 * Backward of training-mode batch norm through the batch statistics:
 * dx = gamma*invStd/m * (m*gy - sum(gy) - xhat * sum(gy*xhat)), dgamma = sum(gy*xhat), dbeta = sum(gy).
 */
export function batchNorm2dBackward(
  x: Float64Array,
  shape: readonly number[],
  gamma: Float64Array | null,
  gy: Float64Array,
  eps = 1e-5,
): { dx: Float64Array; dgamma: Float64Array; dbeta: Float64Array } {
  const { N, C, HW, m } = dims(x, shape);
  if (gy.length !== x.length) throw new Error('batchNorm2dBackward: gy has the wrong size');
  const { mean, varBiased } = channelStats(x, shape);
  const dgamma = new Float64Array(C);
  const dbeta = new Float64Array(C);
  const dx = new Float64Array(x.length);
  for (let c = 0; c < C; c++) {
    const invStd = 1 / Math.sqrt(varBiased[c] + eps);
    for (let n = 0; n < N; n++) {
      for (let p = 0; p < HW; p++) {
        const i = (n * C + c) * HW + p;
        const xhat = (x[i] - mean[c]) * invStd;
        dbeta[c] += gy[i];
        dgamma[c] += gy[i] * xhat;
      }
    }
    const g = gamma ? gamma[c] : 1;
    for (let n = 0; n < N; n++) {
      for (let p = 0; p < HW; p++) {
        const i = (n * C + c) * HW + p;
        const xhat = (x[i] - mean[c]) * invStd;
        dx[i] = ((g * invStd) / m) * (m * gy[i] - dbeta[c] - xhat * dgamma[c]);
      }
    }
  }
  return { dx, dgamma, dbeta };
}

/** Eval-mode batch norm with running statistics: y = gamma * (x - runMean) / sqrt(runVar + eps) + beta. */
export function batchNorm2dEval(
  x: Float64Array,
  shape: readonly number[],
  runMean: Float64Array,
  runVar: Float64Array,
  gamma: Float64Array | null,
  beta: Float64Array | null,
  eps = 1e-5,
): Float64Array {
  const { N, C, HW } = dims(x, shape);
  const y = new Float64Array(x.length);
  for (let n = 0; n < N; n++) {
    for (let c = 0; c < C; c++) {
      const g = gamma ? gamma[c] : 1;
      const b = beta ? beta[c] : 0;
      const inv = 1 / Math.sqrt(runVar[c] + eps);
      for (let p = 0; p < HW; p++) {
        const i = (n * C + c) * HW + p;
        y[i] = g * (x[i] - runMean[c]) * inv + b;
      }
    }
  }
  return y;
}

/**
 * PyTorch running-stat update: new = (1 - momentum) * old + momentum * batch, using the
 * unbiased batch variance. Returns new arrays; the inputs are left untouched.
 */
export function updateRunningStats(
  runMean: Float64Array,
  runVar: Float64Array,
  mean: Float64Array,
  varUnbiased: Float64Array,
  momentum = 0.1,
): { runMean: Float64Array; runVar: Float64Array } {
  return {
    runMean: runMean.map((old, c) => (1 - momentum) * old + momentum * mean[c]),
    runVar: runVar.map((old, c) => (1 - momentum) * old + momentum * varUnbiased[c]),
  };
}

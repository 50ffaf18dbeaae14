// Plain float64 CPU reference implementations of the core tensor ops.
//
// These exist only to judge the GPU kernels, so they favour obviously-correct loops over
// speed. Every tensor is a flat row-major Float64Array plus an explicit shape.

/** A tensor as a flat row-major buffer with its shape. */
export interface Tensor {
  data: Float64Array;
  shape: number[];
}

/** Number of elements of a shape (1 for a scalar shape []). */
export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Row-major strides of a shape. */
export function stridesOf(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** Multi-index of flat index `flat` in `shape`. */
export function unravel(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length);
  for (let i = shape.length - 1; i >= 0; i--) {
    idx[i] = flat % shape[i];
    flat = Math.floor(flat / shape[i]);
  }
  return idx;
}

function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`axis ${axis} out of range for rank ${rank}`);
  return a;
}

function checkSize(data: ArrayLike<number>, shape: readonly number[], name: string): void {
  if (data.length !== numel(shape)) {
    throw new Error(`${name}: data length ${data.length} does not match shape [${shape}]`);
  }
}

/** NumPy-style broadcast of two shapes (right-aligned; each dim equal or 1). */
export function broadcastShape(a: readonly number[], b: readonly number[]): number[] {
  const rank = Math.max(a.length, b.length);
  const out = new Array<number>(rank);
  for (let i = 0; i < rank; i++) {
    const da = i - (rank - a.length) >= 0 ? a[i - (rank - a.length)] : 1;
    const db = i - (rank - b.length) >= 0 ? b[i - (rank - b.length)] : 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`shapes [${a}] and [${b}] do not broadcast`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Flat offset into a tensor of `shape` for an output multi-index of a (possibly larger) broadcast shape. */
function broadcastOffset(outIdx: readonly number[], shape: readonly number[]): number {
  const lead = outIdx.length - shape.length;
  const st = stridesOf(shape);
  let off = 0;
  for (let i = 0; i < shape.length; i++) {
    // A size-1 dim is broadcast, so it always reads index 0.
    const k = shape[i] === 1 ? 0 : outIdx[i + lead];
    off += k * st[i];
  }
  return off;
}

/** Elementwise f(a, b) with broadcasting. */
export function broadcastBinary(
  a: Float64Array,
  aShape: readonly number[],
  b: Float64Array,
  bShape: readonly number[],
  f: (x: number, y: number) => number,
): Tensor {
  checkSize(a, aShape, 'broadcastBinary a');
  checkSize(b, bShape, 'broadcastBinary b');
  const shape = broadcastShape(aShape, bShape);
  const data = new Float64Array(numel(shape));
  for (let i = 0; i < data.length; i++) {
    const idx = unravel(i, shape);
    data[i] = f(a[broadcastOffset(idx, aShape)], b[broadcastOffset(idx, bShape)]);
  }
  return { data, shape };
}

/** Sum a gradient of broadcast shape `gShape` back to the input shape `targetShape` (the adjoint of broadcasting). */
export function reduceSumToShape(
  g: Float64Array,
  gShape: readonly number[],
  targetShape: readonly number[],
): Float64Array {
  checkSize(g, gShape, 'reduceSumToShape');
  // Validates that targetShape really broadcasts to gShape.
  const bs = broadcastShape(gShape, targetShape);
  if (bs.length !== gShape.length || bs.some((d, i) => d !== gShape[i])) {
    throw new Error(`[${targetShape}] does not broadcast to [${gShape}]`);
  }
  const out = new Float64Array(numel(targetShape));
  for (let i = 0; i < g.length; i++) {
    out[broadcastOffset(unravel(i, gShape), targetShape)] += g[i];
  }
  return out;
}

/** Options for `reduce`. */
export interface ReduceOptions {
  /** For kind 'var': divide by (count - 1) instead of count. */
  unbiased?: boolean;
}

/**
 * Reduce over `axes` (negative allowed) with sum, mean, max or variance (population/biased
 * unless opts.unbiased). An empty `axes` list reduces nothing (each group has one element).
 */
export function reduce(
  x: Float64Array,
  shape: readonly number[],
  axes: readonly number[],
  keepdim: boolean,
  kind: 'sum' | 'mean' | 'max' | 'var',
  opts: ReduceOptions = {},
): Tensor {
  checkSize(x, shape, 'reduce');
  const rank = shape.length;
  const reduced = new Array<boolean>(rank).fill(false);
  for (const a of axes) reduced[normAxis(a, rank)] = true;

  // Shape with reduced dims set to 1; its flat index is the output index either way.
  const keptShape = shape.map((d, i) => (reduced[i] ? 1 : d));
  const outShape = keepdim ? keptShape : shape.filter((_, i) => !reduced[i]);
  const nOut = numel(keptShape);
  const count = numel(shape) / Math.max(nOut, 1);
  const keptStrides = stridesOf(keptShape);

  const groupOf = (i: number): number => {
    const idx = unravel(i, shape);
    let o = 0;
    for (let d = 0; d < rank; d++) if (!reduced[d]) o += idx[d] * keptStrides[d];
    return o;
  };

  const out = new Float64Array(nOut);
  if (kind === 'max') {
    out.fill(-Infinity);
    for (let i = 0; i < x.length; i++) {
      const o = groupOf(i);
      // NaN propagates, as in PyTorch.
      if (x[i] > out[o] || Number.isNaN(x[i])) out[o] = x[i];
    }
    return { data: out, shape: outShape };
  }

  for (let i = 0; i < x.length; i++) out[groupOf(i)] += x[i];
  if (kind === 'sum') return { data: out, shape: outShape };
  for (let o = 0; o < nOut; o++) out[o] /= count;
  if (kind === 'mean') return { data: out, shape: outShape };

  // Two-pass variance: more accurate than E[x^2] - E[x]^2.
  const sq = new Float64Array(nOut);
  for (let i = 0; i < x.length; i++) {
    const o = groupOf(i);
    const d = x[i] - out[o];
    sq[o] += d * d;
  }
  const denom = opts.unbiased ? count - 1 : count;
  for (let o = 0; o < nOut; o++) sq[o] /= denom;
  return { data: sq, shape: outShape };
}

/** Batched matmul [...batchA, M, K] @ [...batchB, K, N] with broadcasting of the batch dims. */
export function matmul(
  a: Float64Array,
  aShape: readonly number[],
  b: Float64Array,
  bShape: readonly number[],
): Tensor {
  checkSize(a, aShape, 'matmul a');
  checkSize(b, bShape, 'matmul b');
  if (aShape.length < 2 || bShape.length < 2) throw new Error('matmul needs rank >= 2 operands');
  const M = aShape[aShape.length - 2];
  const K = aShape[aShape.length - 1];
  const K2 = bShape[bShape.length - 2];
  const N = bShape[bShape.length - 1];
  if (K !== K2) throw new Error(`matmul inner dims differ: ${K} vs ${K2}`);
  const aBatch = aShape.slice(0, -2);
  const bBatch = bShape.slice(0, -2);
  const batch = broadcastShape(aBatch, bBatch);
  const nBatch = numel(batch);
  const out = new Float64Array(nBatch * M * N);
  for (let bi = 0; bi < nBatch; bi++) {
    const idx = unravel(bi, batch);
    const aOff = broadcastOffset(idx, aBatch) * M * K;
    const bOff = broadcastOffset(idx, bBatch) * K * N;
    const oOff = bi * M * N;
    for (let i = 0; i < M; i++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let k = 0; k < K; k++) s += a[aOff + i * K + k] * b[bOff + k * N + j];
        out[oOff + i * N + j] = s;
      }
    }
  }
  return { data: out, shape: [...batch, M, N] };
}

/** Permute axes: output dim i is input dim perm[i]. */
export function permute(x: Float64Array, shape: readonly number[], perm: readonly number[]): Tensor {
  checkSize(x, shape, 'permute');
  const rank = shape.length;
  if (perm.length !== rank || new Set(perm.map((p) => normAxis(p, rank))).size !== rank) {
    throw new Error(`bad permutation [${perm}] for rank ${rank}`);
  }
  const p = perm.map((q) => normAxis(q, rank));
  const outShape = p.map((q) => shape[q]);
  const inStrides = stridesOf(shape);
  const out = new Float64Array(x.length);
  for (let i = 0; i < out.length; i++) {
    const oIdx = unravel(i, outShape);
    let off = 0;
    for (let d = 0; d < rank; d++) off += oIdx[d] * inStrides[p[d]];
    out[i] = x[off];
  }
  return { data: out, shape: outShape };
}

/** Concatenate tensors along `axis`; all other dims must match. */
export function concat(list: readonly Tensor[], axis: number): Tensor {
  if (list.length === 0) throw new Error('concat of an empty list');
  const rank = list[0].shape.length;
  const ax = normAxis(axis, rank);
  for (const t of list) {
    checkSize(t.data, t.shape, 'concat');
    if (t.shape.length !== rank || t.shape.some((d, i) => i !== ax && d !== list[0].shape[i])) {
      throw new Error(`concat: shape [${t.shape}] incompatible with [${list[0].shape}] on axis ${ax}`);
    }
  }
  const outShape = [...list[0].shape];
  outShape[ax] = list.reduce((s, t) => s + t.shape[ax], 0);
  // View each tensor as [outer, axisLen * inner] and copy row by row.
  const outer = numel(outShape.slice(0, ax));
  const inner = numel(outShape.slice(ax + 1));
  const out = new Float64Array(numel(outShape));
  let pos = 0;
  for (let o = 0; o < outer; o++) {
    for (const t of list) {
      const row = t.shape[ax] * inner;
      for (let k = 0; k < row; k++) out[pos++] = t.data[o * row + k];
    }
  }
  return { data: out, shape: outShape };
}

/** Take indices [start, end) along `axis` (negative start/end count from the end, like Python). */
export function slice(
  x: Float64Array,
  shape: readonly number[],
  axis: number,
  start: number,
  end: number,
): Tensor {
  checkSize(x, shape, 'slice');
  const ax = normAxis(axis, shape.length);
  const len = shape[ax];
  const clamp = (v: number) => Math.min(Math.max(v < 0 ? v + len : v, 0), len);
  const s = clamp(start);
  const e = Math.max(clamp(end), s);
  const outShape = [...shape];
  outShape[ax] = e - s;
  const outer = numel(shape.slice(0, ax));
  const inner = numel(shape.slice(ax + 1));
  const out = new Float64Array(numel(outShape));
  let pos = 0;
  for (let o = 0; o < outer; o++) {
    for (let k = s; k < e; k++) {
      for (let i = 0; i < inner; i++) out[pos++] = x[(o * len + k) * inner + i];
    }
  }
  return { data: out, shape: outShape };
}

/** Calls fn(offsets) for every 1-D lane along `axis`; offsets are the flat indices of that lane. */
function forEachLane(shape: readonly number[], axis: number, fn: (offsets: number[]) => void): void {
  const ax = normAxis(axis, shape.length);
  const len = shape[ax];
  const outer = numel(shape.slice(0, ax));
  const inner = numel(shape.slice(ax + 1));
  const offsets = new Array<number>(len);
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      for (let k = 0; k < len; k++) offsets[k] = (o * len + k) * inner + i;
      fn(offsets);
    }
  }
}

/** Stable log-sum-exp of a list of numbers (max-shifted). */
export function logSumExp(values: ArrayLike<number>): number {
  let m = -Infinity;
  for (let i = 0; i < values.length; i++) m = Math.max(m, values[i]);
  if (m === -Infinity || !Number.isFinite(m)) return m;
  let s = 0;
  for (let i = 0; i < values.length; i++) s += Math.exp(values[i] - m);
  return m + Math.log(s);
}

/** Log-softmax along `axis` (same shape as x), computed with a max shift. */
export function logSoftmax(x: Float64Array, shape: readonly number[], axis: number): Float64Array {
  checkSize(x, shape, 'logSoftmax');
  const out = new Float64Array(x.length);
  forEachLane(shape, axis, (offs) => {
    const lse = logSumExp(offs.map((o) => x[o]));
    for (const o of offs) out[o] = x[o] - lse;
  });
  return out;
}

/** Softmax along `axis` (same shape as x). */
export function softmax(x: Float64Array, shape: readonly number[], axis: number): Float64Array {
  const ls = logSoftmax(x, shape, axis);
  return ls.map(Math.exp);
}

/** Numerically stable sigmoid. */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** Stable softplus log(1 + exp(x)). */
export function softplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

/**
 * Mean cross-entropy of logits [N, C] (N = labels.length) against integer labels.
 * With per-sample weights: sum(w_i * l_i) / sum(w_i). dlogits is d loss / d logits.
 */
export function crossEntropy(
  logits: Float64Array,
  labels: Int32Array,
  weights?: Float64Array | null,
): { loss: number; dlogits: Float64Array } {
  const N = labels.length;
  if (N === 0 || logits.length % N !== 0) throw new Error('crossEntropy: logits length must be N * C');
  const C = logits.length / N;
  if (weights && weights.length !== N) throw new Error('crossEntropy: weights must have length N');
  const w = (i: number) => (weights ? weights[i] : 1);
  let wSum = 0;
  for (let i = 0; i < N; i++) wSum += w(i);

  const logp = logSoftmax(logits, [N, C], 1);
  const dlogits = new Float64Array(logits.length);
  let loss = 0;
  for (let i = 0; i < N; i++) {
    const y = labels[i];
    if (y < 0 || y >= C) throw new Error(`crossEntropy: label ${y} out of range [0, ${C})`);
    const scale = w(i) / wSum;
    loss += scale * -logp[i * C + y];
    // d(-log p_y)/dz = softmax(z) - onehot(y)
    for (let c = 0; c < C; c++) {
      dlogits[i * C + c] = scale * (Math.exp(logp[i * C + c]) - (c === y ? 1 : 0));
    }
  }
  return { loss, dlogits };
}

/**
 * Expand optional weights to one weight per element: undefined -> all 1; length numel -> per
 * element; length shape[0] -> per sample (broadcast over the remaining dims).
 */
export function elementWeights(
  weights: Float64Array | null | undefined,
  numelTotal: number,
  nSamples: number,
): Float64Array {
  const we = new Float64Array(numelTotal);
  if (!weights) return we.fill(1);
  if (weights.length === numelTotal) return we.map((_, i) => weights[i]);
  if (weights.length === nSamples && numelTotal % nSamples === 0) {
    const per = numelTotal / nSamples;
    return we.map((_, i) => weights[Math.floor(i / per)]);
  }
  throw new Error(`weights of length ${weights.length} fit neither ${numelTotal} elements nor ${nSamples} samples`);
}

/**
 * Mean binary cross-entropy with logits over all elements, using the stable form
 * max(x,0) - x*t + log(1+exp(-|x|)). Weights may be per sample (length shape[0]) or per
 * element; weighted loss = sum(w_e * l_e) / sum(w_e).
 */
export function bceWithLogits(
  logits: Float64Array,
  targets: Float64Array,
  shape: readonly number[],
  weights?: Float64Array | null,
): { loss: number; dlogits: Float64Array } {
  checkSize(logits, shape, 'bceWithLogits logits');
  checkSize(targets, shape, 'bceWithLogits targets');
  const n = logits.length;
  const we = elementWeights(weights, n, shape.length > 0 ? shape[0] : 1);
  let wSum = 0;
  for (let i = 0; i < n; i++) wSum += we[i];
  let loss = 0;
  const dlogits = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const x = logits[i];
    const t = targets[i];
    const l = Math.max(x, 0) - x * t + Math.log1p(Math.exp(-Math.abs(x)));
    loss += (we[i] / wSum) * l;
    dlogits[i] = (we[i] / wSum) * (sigmoid(x) - t);
  }
  return { loss, dlogits };
}

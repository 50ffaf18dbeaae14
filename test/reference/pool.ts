// Float64 CPU reference for 2-D pooling (NCHW), PyTorch semantics with ceil_mode=False.

/** Pooling hyper-parameters; stride defaults to kernel, padding ([ph, pw], symmetric) to 0. */
export interface Pool2dOptions {
  kernel: [number, number];
  stride?: [number, number];
  padding?: [number, number];
}

/** Avg-pool options; countIncludePad defaults to true as in PyTorch. */
export interface AvgPool2dOptions extends Pool2dOptions {
  countIncludePad?: boolean;
}

function geometry(shape: readonly number[], o: Pool2dOptions) {
  if (shape.length !== 4) throw new Error('pool2d expects a 4-D NCHW shape');
  const [N, C, H, W] = shape;
  const [kh, kw] = o.kernel;
  const [sh, sw] = o.stride ?? o.kernel;
  const [ph, pw] = o.padding ?? [0, 0];
  const oH = Math.floor((H + 2 * ph - kh) / sh) + 1;
  const oW = Math.floor((W + 2 * pw - kw) / sw) + 1;
  if (oH <= 0 || oW <= 0) throw new Error(`pool2d output would be empty (${oH}x${oW})`);
  return { N, C, H, W, kh, kw, sh, sw, ph, pw, oH, oW };
}

/**
 * Max pooling with implicit -inf padding. argmax[n,c,oh,ow] is the flat index h*W+w into the
 * input plane (-1 if a window lies wholly in padding). Ties keep the first max in row-major
 * window order; NaN propagates (a later NaN replaces an earlier value), as in PyTorch.
 */
export function maxPool2d(
  x: Float64Array,
  shape: readonly number[],
  o: Pool2dOptions,
): { y: Float64Array; shape: number[]; argmax: Int32Array } {
  const { N, C, H, W, kh, kw, sh, sw, ph, pw, oH, oW } = geometry(shape, o);
  const y = new Float64Array(N * C * oH * oW);
  const argmax = new Int32Array(y.length);
  for (let nc = 0; nc < N * C; nc++) {
    for (let oh = 0; oh < oH; oh++) {
      for (let ow = 0; ow < oW; ow++) {
        let best = -Infinity;
        let bestIdx = -1;
        for (let i = 0; i < kh; i++) {
          const h = oh * sh - ph + i;
          if (h < 0 || h >= H) continue;
          for (let j = 0; j < kw; j++) {
            const w = ow * sw - pw + j;
            if (w < 0 || w >= W) continue;
            const v = x[nc * H * W + h * W + w];
            if (bestIdx < 0 || v > best || Number.isNaN(v)) {
              best = v;
              bestIdx = h * W + w;
            }
          }
        }
        const out = (nc * oH + oh) * oW + ow;
        y[out] = best;
        argmax[out] = bestIdx;
      }
    }
  }
  return { y, shape: [N, C, oH, oW], argmax };
}

/** Routes each output gradient to its argmax input position (accumulating where windows overlap). */
export function maxPool2dBackward(
  gy: Float64Array,
  argmax: Int32Array,
  xShape: readonly number[],
  yShape: readonly number[],
): Float64Array {
  const [N, C, H, W] = xShape;
  const [, , oH, oW] = yShape;
  const dx = new Float64Array(N * C * H * W);
  for (let nc = 0; nc < N * C; nc++) {
    for (let p = 0; p < oH * oW; p++) {
      const a = argmax[nc * oH * oW + p];
      if (a >= 0) dx[nc * H * W + a] += gy[nc * oH * oW + p];
    }
  }
  return dx;
}

/** Divisor of one avg-pool window: kh*kw with countIncludePad, else the number of in-bounds cells. */
function avgDivisor(g: ReturnType<typeof geometry>, oh: number, ow: number, includePad: boolean): number {
  const h0 = oh * g.sh - g.ph;
  const w0 = ow * g.sw - g.pw;
  if (includePad) {
    // PyTorch clips the window at H+ph / W+pw; with ceil_mode=False it never reaches that.
    return (Math.min(h0 + g.kh, g.H + g.ph) - h0) * (Math.min(w0 + g.kw, g.W + g.pw) - w0);
  }
  const hs = Math.max(h0, 0);
  const he = Math.min(h0 + g.kh, g.H);
  const ws = Math.max(w0, 0);
  const we = Math.min(w0 + g.kw, g.W);
  return (he - hs) * (we - ws);
}

/** Average pooling with zero padding; PyTorch divisor rules (countIncludePad default true). */
export function avgPool2d(
  x: Float64Array,
  shape: readonly number[],
  o: AvgPool2dOptions,
): { y: Float64Array; shape: number[] } {
  const g = geometry(shape, o);
  const { N, C, H, W, kh, kw, sh, sw, ph, pw, oH, oW } = g;
  const includePad = o.countIncludePad ?? true;
  const y = new Float64Array(N * C * oH * oW);
  for (let nc = 0; nc < N * C; nc++) {
    for (let oh = 0; oh < oH; oh++) {
      for (let ow = 0; ow < oW; ow++) {
        let s = 0;
        for (let i = 0; i < kh; i++) {
          const h = oh * sh - ph + i;
          if (h < 0 || h >= H) continue;
          for (let j = 0; j < kw; j++) {
            const w = ow * sw - pw + j;
            if (w < 0 || w >= W) continue;
            s += x[nc * H * W + h * W + w];
          }
        }
        y[(nc * oH + oh) * oW + ow] = s / avgDivisor(g, oh, ow, includePad);
      }
    }
  }
  return { y, shape: [N, C, oH, oW] };
}

/** Backward of avgPool2d: each output gradient spread evenly (÷ divisor) over its in-bounds window. */
export function avgPool2dBackward(
  gy: Float64Array,
  xShape: readonly number[],
  o: AvgPool2dOptions,
): Float64Array {
  const g = geometry(xShape, o);
  const { N, C, H, W, kh, kw, sh, sw, ph, pw, oH, oW } = g;
  if (gy.length !== N * C * oH * oW) throw new Error('avgPool2dBackward: gy has the wrong size');
  const includePad = o.countIncludePad ?? true;
  const dx = new Float64Array(N * C * H * W);
  for (let nc = 0; nc < N * C; nc++) {
    for (let oh = 0; oh < oH; oh++) {
      for (let ow = 0; ow < oW; ow++) {
        const share = gy[(nc * oH + oh) * oW + ow] / avgDivisor(g, oh, ow, includePad);
        for (let i = 0; i < kh; i++) {
          const h = oh * sh - ph + i;
          if (h < 0 || h >= H) continue;
          for (let j = 0; j < kw; j++) {
            const w = ow * sw - pw + j;
            if (w < 0 || w >= W) continue;
            dx[nc * H * W + h * W + w] += share;
          }
        }
      }
    }
  }
  return dx;
}

/** Global average pooling over H, W: [N,C,H,W] -> [N,C,1,1]. */
export function globalAvgPool(x: Float64Array, shape: readonly number[]): { y: Float64Array; shape: number[] } {
  const [N, C, H, W] = shape;
  const y = new Float64Array(N * C);
  for (let nc = 0; nc < N * C; nc++) {
    let s = 0;
    for (let p = 0; p < H * W; p++) s += x[nc * H * W + p];
    y[nc] = s / (H * W);
  }
  return { y, shape: [N, C, 1, 1] };
}

/** Backward of globalAvgPool: dx[n,c,h,w] = gy[n,c] / (H*W). */
export function globalAvgPoolBackward(gy: Float64Array, xShape: readonly number[]): Float64Array {
  const [N, C, H, W] = xShape;
  const dx = new Float64Array(N * C * H * W);
  for (let nc = 0; nc < N * C; nc++) {
    for (let p = 0; p < H * W; p++) dx[nc * H * W + p] = gy[nc] / (H * W);
  }
  return dx;
}

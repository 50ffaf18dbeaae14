// Float64 CPU reference for 2-D convolution (NCHW, weights [Cout, Cin/groups, kH, kW]),
// forward and backward, with stride, asymmetric padding, dilation and groups.

/** Convolution hyper-parameters; padding is [top, bottom, left, right]. */
export interface Conv2dOptions {
  stride: [number, number];
  padding: [number, number, number, number];
  dilation: [number, number];
  groups: number;
}

/** Output spatial size, PyTorch formula: floor((H + top + bottom - dil*(k-1) - 1) / stride) + 1. */
export function convOutSize(
  xShape: readonly number[],
  wShape: readonly number[],
  o: Conv2dOptions,
): [number, number] {
  const [, , H, W] = xShape;
  const [, , kH, kW] = wShape;
  const [sh, sw] = o.stride;
  const [pt, pb, pl, pr] = o.padding;
  const [dh, dw] = o.dilation;
  const oH = Math.floor((H + pt + pb - dh * (kH - 1) - 1) / sh) + 1;
  const oW = Math.floor((W + pl + pr - dw * (kW - 1) - 1) / sw) + 1;
  return [oH, oW];
}

/** Checks the shapes and returns every size the loops need. */
function geometry(xShape: readonly number[], wShape: readonly number[], o: Conv2dOptions) {
  if (xShape.length !== 4 || wShape.length !== 4) throw new Error('conv2d expects 4-D x and w');
  const [N, Cin, H, W] = xShape;
  const [Cout, CinG, kH, kW] = wShape;
  const G = o.groups;
  if (Cin % G !== 0 || Cout % G !== 0) throw new Error(`channels ${Cin}->${Cout} not divisible by groups ${G}`);
  if (CinG !== Cin / G) throw new Error(`weight in-channels ${CinG} != Cin/groups ${Cin / G}`);
  const [oH, oW] = convOutSize(xShape, wShape, o);
  if (oH <= 0 || oW <= 0) throw new Error(`conv2d output would be empty (${oH}x${oW})`);
  return { N, Cin, H, W, Cout, CinG, CoutG: Cout / G, kH, kW, oH, oW };
}

/**
 * y[n,co,oh,ow] = b[co] + sum_{ci,kh,kw} x[n, g*CinG+ci, oh*sh - top + kh*dh, ow*sw - left + kw*dw] * w[co,ci,kh,kw]
 * with g = floor(co / CoutG) and out-of-range input reading as zero.
 */
export function conv2d(
  x: Float64Array,
  xShape: readonly number[],
  w: Float64Array,
  wShape: readonly number[],
  bias: Float64Array | null,
  o: Conv2dOptions,
): { y: Float64Array; shape: number[] } {
  const { N, Cin, H, W, Cout, CinG, CoutG, kH, kW, oH, oW } = geometry(xShape, wShape, o);
  const [sh, sw] = o.stride;
  const [pt, , pl] = o.padding;
  const [dh, dw] = o.dilation;
  const y = new Float64Array(N * Cout * oH * oW);

  for (let n = 0; n < N; n++) {
    for (let co = 0; co < Cout; co++) {
      const g = Math.floor(co / CoutG);
      const yBase = (n * Cout + co) * oH * oW;
      if (bias) for (let p = 0; p < oH * oW; p++) y[yBase + p] = bias[co];
      for (let ci = 0; ci < CinG; ci++) {
        const xBase = (n * Cin + g * CinG + ci) * H * W;
        for (let kh = 0; kh < kH; kh++) {
          for (let kw = 0; kw < kW; kw++) {
            const wv = w[((co * CinG + ci) * kH + kh) * kW + kw];
            // Loop over outputs innermost (one weight at a time) so the reference stays fast enough.
            for (let oh = 0; oh < oH; oh++) {
              const ih = oh * sh - pt + kh * dh;
              if (ih < 0 || ih >= H) continue;
              for (let ow = 0; ow < oW; ow++) {
                const iw = ow * sw - pl + kw * dw;
                if (iw < 0 || iw >= W) continue;
                y[yBase + oh * oW + ow] += wv * x[xBase + ih * W + iw];
              }
            }
          }
        }
      }
    }
  }
  return { y, shape: [N, Cout, oH, oW] };
}

/**
 * Gradients of conv2d given gy = dL/dy: the same index map as the forward, with each
 * product term's contribution routed to dx (via w) and dw (via x); db sums gy over N,H,W.
 */
export function conv2dBackward(
  x: Float64Array,
  xShape: readonly number[],
  w: Float64Array,
  wShape: readonly number[],
  gy: Float64Array,
  o: Conv2dOptions,
): { dx: Float64Array; dw: Float64Array; db: Float64Array } {
  const { N, Cin, H, W, Cout, CinG, CoutG, kH, kW, oH, oW } = geometry(xShape, wShape, o);
  if (gy.length !== N * Cout * oH * oW) throw new Error('conv2dBackward: gy has the wrong size');
  const [sh, sw] = o.stride;
  const [pt, , pl] = o.padding;
  const [dh, dw] = o.dilation;
  const dx = new Float64Array(x.length);
  const dW = new Float64Array(w.length);
  const db = new Float64Array(Cout);

  for (let n = 0; n < N; n++) {
    for (let co = 0; co < Cout; co++) {
      const g = Math.floor(co / CoutG);
      const yBase = (n * Cout + co) * oH * oW;
      for (let p = 0; p < oH * oW; p++) db[co] += gy[yBase + p];
      for (let ci = 0; ci < CinG; ci++) {
        const xBase = (n * Cin + g * CinG + ci) * H * W;
        for (let kh = 0; kh < kH; kh++) {
          for (let kw = 0; kw < kW; kw++) {
            const wIdx = ((co * CinG + ci) * kH + kh) * kW + kw;
            const wv = w[wIdx];
            let dwAcc = 0;
            for (let oh = 0; oh < oH; oh++) {
              const ih = oh * sh - pt + kh * dh;
              if (ih < 0 || ih >= H) continue;
              for (let ow = 0; ow < oW; ow++) {
                const iw = ow * sw - pl + kw * dw;
                if (iw < 0 || iw >= W) continue;
                const g_ = gy[yBase + oh * oW + ow];
                dx[xBase + ih * W + iw] += g_ * wv;
                dwAcc += g_ * x[xBase + ih * W + iw];
              }
            }
            dW[wIdx] += dwAcc;
          }
        }
      }
    }
  }
  return { dx, dw: dW, db };
}

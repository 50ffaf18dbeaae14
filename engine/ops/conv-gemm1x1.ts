// 1x1 convs as matrix products on the matmul kernel (forward, backward-data at stride 1, and the
// weight gradient of large layers); conv.ts and conv-wgrad.ts pick them with gemm1x1() / gemm1x1Wgrad().
import type { Tensor } from '../tensor.ts';
import { sum } from './reduce.ts';
import { getGpu } from '../device.ts';
import { matmulRaw, matmulTuning, MATMUL_TILE_SHARED } from './matmul.ts';
import { conv2dTuning, padInput, type ConvGeometry } from './conv-common.ts';

/**
 * A 1x1 conv without padding is y[n] = w [Cout x Cin] . x[n] [Cin x Ho*Wo] (x subsampled first
 * when strided). Forward, the matmul kernel (weight rows shared across the subgroup, no weight
 * packing, no pixel padding) ran 1.14-1.30x faster than the conv kernel's flat tiles. Backward-
 * data at stride 1 (dx[n] = wᵀ . gy[n]) wins since the GEMM's round-4 tiles (1.19-1.38x); the
 * weight gradient (gy . xᵀ per image + a batch sum) only on large, wide layers (gemm1x1Wgrad);
 * strided backward-data keeps the conv kernels (bench/NOTES.md, rounds 3 to 5). Channel counts
 * that are multiples of 4 keep its vec4 loads.
 */
export function gemm1x1(g: ConvGeometry): boolean {
  if (conv2dTuning.gemm1x1 === false || conv2dTuning.tile) return false;
  // measured only where matmul shares its A rows across 8-lane subgroups (lavapipe); elsewhere
  // (SwiftShader's 4 lanes, no subgroups) the flat conv tiles stay
  if (getGpu().subgroupSize !== MATMUL_TILE_SHARED.WX || matmulTuning.subgroups === false || conv2dTuning.subgroups === false) return false;
  const strided = g.sh !== 1 || g.sw !== 1 || g.Ho !== g.H || g.Wo !== g.W;
  return g.KH === 1 && g.KW === 1 && g.pt === 0 && g.pl === 0 && g.groups === 1 && g.Cin % 4 === 0 && g.Cout % 4 === 0 && (!strided || g.Wo % 4 === 0);
}

/** x as [N, Cin, Ho*Wo]: the sampled pixels of a strided 1x1 conv (a copy), else a view. */
function pixels1x1(x: Tensor, g: ConvGeometry): Tensor {
  const strided = g.sh !== 1 || g.sw !== 1 || g.Ho !== g.H || g.Wo !== g.W;
  const s = strided ? padInput(x, 0, 0, g.Ho, g.Wo, g.sh, g.sw) : x;
  const v = s.view([g.N, g.Cin, g.Ho * g.Wo]);
  if (s !== x) s.dispose();
  return v;
}

export function gemm1x1Forward(x: Tensor, w: Tensor, g: ConvGeometry): Tensor {
  const xv = pixels1x1(x, g);
  const wv = w.view([1, g.Cout, g.Cin]);
  const y = matmulRaw(wv, xv, false, false, null, 'conv2d_matmul');
  const out = y.view([g.N, g.Cout, g.Ho, g.Wo]);
  for (const t of [xv, wv, y]) t.dispose();
  return out;
}

/** dx of a stride-1 1x1 conv: dx[n] = wᵀ [Cin x Cout] . gy[n] [Cout x H*W], w read transposed in the kernel. */
export function gemm1x1BackwardData(gy: Tensor, w: Tensor, g: ConvGeometry): Tensor {
  const gv = gy.view([g.N, g.Cout, g.H * g.W]);
  const wv = w.view([1, g.Cout, g.Cin]);
  const dx = matmulRaw(wv, gv, true, false, null, 'conv2d_matmul_dx');
  const out = dx.view([g.N, g.Cin, g.H, g.W]);
  for (const t of [gv, wv, dx]) t.dispose();
  return out;
}

/**
 * Whether the weight gradient of a gemm1x1() conv runs on the matmul kernel (gemm1x1WeightGrad)
 * instead of conv2d_wgrad's flat tiles. `conv2dTuning.gemm1x1Wgrad` forces it on or off.
 */
export function gemm1x1Wgrad(g: ConvGeometry): boolean {
  if (!gemm1x1(g) || conv2dTuning.gemm1x1Wgrad === false) return false;
  // the per-image partials [N, Cout, Cin] must fit one binding
  if (g.N * g.Cout * g.Cin * 4 > getGpu().limits.maxStorageBufferBindingSize) return false;
  if (conv2dTuning.gemm1x1Wgrad === true) return true;
  // Measured (bench/NOTES.md, round 5) on the 1x1 convs of ResNet-50, MobileNet-V2 and
  // DenseNet-121 at b64: the per-image partials cost Cout x Cin writes per image, so the GEMM wins
  // only with many pixels per image and wide layers: 1.07-1.53x at 28 px with >= 64 channels each
  // side, 1.16-1.82x at 14 px from 320 input channels; at 7 px and below it ran 0.06-0.5x, and
  // narrow layers (DenseNet width 1/4, MobileNet-V2) 0.3-1.0x.
  const P = g.Ho * g.Wo;
  if (P % 4 !== 0 || g.Cout < 64) return false;
  return P >= 784 ? g.Cin >= 64 : P >= 196 && g.Cin >= 320;
}

/**
 * dw of a 1x1 conv: gy[n] [Cout x P] . x[n]ᵀ [P x Cin] per image (x read transposed in the
 * kernel, P the sampled pixels), then summed over the batch.
 */
export function gemm1x1WeightGrad(x: Tensor, gy: Tensor, g: ConvGeometry): Tensor {
  const xv = pixels1x1(x, g);
  const gv = gy.view([g.N, g.Cout, g.Ho * g.Wo]);
  const part = matmulRaw(gv, xv, false, true, null, 'conv2d_matmul_dw');
  const rows = part.view([g.N, g.Cout * g.Cin]);
  const flat = sum(rows, [0]);
  const dw = flat.view([g.Cout, g.Cin, 1, 1]);
  for (const t of [xv, gv, part, rows, flat]) t.dispose();
  return dw;
}


// 1x1 convs as matrix products on the matmul kernel (forward, and backward-data at stride 1);
// conv.ts picks them with gemm1x1().
import type { Tensor } from '../tensor.ts';
import { getGpu } from '../device.ts';
import { matmulRaw, matmulTuning, MATMUL_TILE_SHARED } from './matmul.ts';
import { conv2dTuning, padInput, type ConvGeometry } from './conv-common.ts';

/**
 * A 1x1 conv without padding is y[n] = w [Cout x Cin] . x[n] [Cin x Ho*Wo] (x subsampled first
 * when strided). Forward, the matmul kernel (weight rows shared across the subgroup, no weight
 * packing, no pixel padding) ran 1.14-1.30x faster than the conv kernel's flat tiles. Backward-
 * data at stride 1 (dx[n] = wᵀ . gy[n]) wins since the GEMM's round-4 tiles (1.19-1.38x); the
 * weight gradient (gy . xᵀ per image + a batch sum) and strided backward-data keep the conv
 * kernels (bench/NOTES.md, rounds 3 and 4). Channel counts that are multiples of 4 keep its vec4 loads.
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

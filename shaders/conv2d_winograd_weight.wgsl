// Winograd F(MxM, 3x3) weight transform: U[k][ci][co] = (G g Gᵀ)[k] for the 3x3 filter g from
// input channel ci to output channel co, as the GEMM's B operand [T][Cin4][Cout4] (zero rows and
// columns past Cin / Cout). TRANSPOSE (backward-data): ci / co index w's output / input channels
// and the filter is flipped, so the same pipeline convolves gy into dx.
// One lane per (ci, 4 output channels); BODY generated unrolled by engine/ops/conv-winograd.ts.
struct P { Cin: u32, Cout: u32, Cin4: u32, Co4: u32, CinW: u32, transpose: u32, nLanes: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> u: array<vec4f>;

/** Tap (kh, kw) of the filter from channel ci to channel co of the GEMM, zero outside. */
fn tap(ci: u32, co: u32, k: u32) -> f32 {
  if (ci >= p.Cin || co >= p.Cout) { return 0.0; }
  if (p.transpose != 0u) { return w[(ci * p.CinW + co) * 9u + 8u - k]; }
  return w[(co * p.CinW + ci) * 9u + k];
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let lane = (wg.x + wg.y * nwg.x) * 64u + li;
  if (lane >= p.nLanes) { return; }
  let co4 = lane % p.Co4;
  let ci = lane / p.Co4;
  let co = co4 * 4u;
  let kStride = p.Cin4 * p.Co4;
  let uo = ci * p.Co4 + co4;
  {{BODY}}
}

// Winograd F(MxM, 3x3) output transform: y tile = Aᵀ m A (+ bias) where m[k] = the GEMM's output
// row [k][p][co4] (a vec4 across 4 output channels). One lane per (tile, 4 output channels);
// tiles overhanging Ho / Wo and channels past Cout are not stored. BODY is generated unrolled by
// engine/ops/conv-winograd.ts (constant indices keep the values in registers on lavapipe).
struct P {
  Ho: u32, Wo: u32, Cout: u32, Co4: u32,  // output size and channels, Cout4 / 4
  tilesW: u32, tilesH: u32, P: u32, nLanes: u32, // tiles per row / column, tiles per chunk
  n0: u32, hasBias: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> m: array<vec4f>;
@group(0) @binding(2) var<storage, read> bias: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<{{Y_ELEM}}>; // Y_ELEM vec4f: whole tile rows (M = 4, Wo % 4 == 0)

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let lane = (wg.x + wg.y * nwg.x) * 64u + li;
  if (lane >= p.nLanes) { return; }
  let co4 = lane % p.Co4;
  let t = lane / p.Co4;
  let tw = t % p.tilesW;
  let r = t / p.tilesW;
  let th = r % p.tilesH;
  let n = p.n0 + r / p.tilesH;
  let mo = t * p.Co4 + co4;
  let kStride = p.P * p.Co4;
  {{BODY}}
  var bv = vec4f(0.0);
  if (p.hasBias != 0u) {
    for (var q = 0u; q < 4u; q++) { bv[q] = bias[min(co4 * 4u + q, p.Cout - 1u)]; }
  }
  let oh0 = th * {{M}}u;
  let ow0 = tw * {{M}}u;
  for (var q = 0u; q < 4u; q++) {
    let co = co4 * 4u + q;
    if (co >= p.Cout) { break; }
    let yb = ((n * p.Cout + co) * p.Ho + oh0) * p.Wo + ow0;
    {{STORE}}
  }
}

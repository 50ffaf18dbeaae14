// Forward conv2d as an implicit GEMM over a zero-padded input (see conv2d_pad.wgsl), no shared
// memory. One invocation computes an R x TM tile of output pixels (R rows, TM consecutive
// columns, TM a multiple of 4) for TN4*4 output channels of one group. Per input channel it loads
// the tile's input window (NR rows of NV aligned vec4) once, then runs every tap, so each loaded
// input value feeds up to KH*KW*TN4*4 FMAs and each weight vec4 feeds R*TM of them.
// Lavapipe scalarises every non-constant-address load per lane (the costly part) and only
// keeps constant-indexed private values in registers, so the per-channel body (BODY) and
// the stores (STORE) are unrolled by conv.ts (fwdBody/fwdStore), not left to WGSL loops.
// Weights come pre-laid-out as [G][KH][KW][CinG][CoutGp] (CoutGp: CoutG padded to TN4*4).
struct P {
  Hp: u32, Wp4: u32, CinG: u32, CoutGp4: u32,   // padded input rows, padded row length / 4
  Ho: u32, Wo: u32, tilesW: u32, tilesH: u32,
  nTiles: u32, coBlocks: u32, CoutG: u32, Cout: u32,
  xPlanes: u32, hasBias: u32,                    // channels per image of x
  // output placement: pixel (oh, ow) goes to y[yr0 + oh * ysh][yc0 + ow * ysw] of a yH x yW plane
  yH: u32, yW: u32, yr0: u32, yc0: u32, ysh: u32, ysw: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> w: array<vec4f>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const TM = {{TM}}u;
const R = {{R}}u;
const TN4 = {{TN4}}u;
const KH = {{KH}}u;
const KW = {{KW}}u;
const SH = {{SH}}u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let t0 = wg.x * 64u + li;
  let t = min(t0, p.nTiles - 1u); // lanes past the end redo the last tile and skip the store
  let tw = t % p.tilesW;
  let r1 = t / p.tilesW;
  let th = r1 % p.tilesH;
  let n = r1 / p.tilesH;
  let oh0 = th * R;
  let ow0 = tw * TM;
  let g = wg.y / p.coBlocks;
  let cob = wg.y % p.coBlocks;

  let plane4 = p.Hp * p.Wp4;
  let W4 = p.Wp4;
  // vec4 index of the window's first element, input channel 0 of this group
  var xo = ((n * p.xPlanes + g * p.CinG) * p.Hp + oh0 * SH) * p.Wp4 + (ow0 * {{SW}}u) / 4u;
  var wi = g * KH * KW * p.CinG * p.CoutGp4 + cob * TN4;
  let ts = p.CinG * p.CoutGp4; // weight stride between taps

  var acc: array<vec4f, R * TM * TN4>;
  for (var ci = 0u; ci < p.CinG; ci++) {
    {{BODY}}
    xo += plane4;
    wi += p.CoutGp4;
  }

  if (t0 >= p.nTiles) { return; }
  let co0 = cob * TN4 * 4u;
  var bv: array<f32, TN4 * 4u>;
  var yb: array<u32, TN4 * 4u>;
  for (var c = 0u; c < TN4 * 4u; c++) {
    let cg = g * p.CoutG + min(co0 + c, p.CoutG - 1u);
    bv[c] = select(0.0, bias[min(cg, arrayLength(&bias) - 1u)], p.hasBias != 0u);
    yb[c] = ((n * p.Cout + cg) * p.yH + p.yr0 + oh0 * p.ysh) * p.yW + p.yc0 + ow0 * p.ysw;
  }
  let rowStep = p.ysh * p.yW;
  {{STORE}}
}

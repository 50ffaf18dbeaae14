// Depthwise conv2d (one input and one output channel per group) over a zero-padded input (see
// conv2d_pad.wgsl). One invocation computes an R x TM tile of one channel: its KH*KW weights are
// loaded once, the tile's input window (NR rows of NV aligned vec4) once, then every tap runs
// from registers (BODY and STORE are unrolled by conv.ts:depthwiseCode). Memory-bound by nature.
struct P {
  Hp: u32, Wp4: u32, C: u32, Ho: u32,
  Wo: u32, tilesW: u32, tilesH: u32, nLanes: u32,
  hasBias: u32, yH: u32, yW: u32, yr0: u32,
  yc0: u32, ysh: u32, ysw: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const TM = {{TM}}u;
const R = {{R}}u;
const KK = {{KK}}u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let L0 = (wg.x + wg.y * nwg.x) * 64u + li;
  let L = min(L0, p.nLanes - 1u);
  let tw = L % p.tilesW;
  let r1 = L / p.tilesW;
  let th = r1 % p.tilesH;
  let plane = r1 / p.tilesH; // n * C + c
  let c = plane % p.C;
  let oh0 = th * R;
  let ow0 = tw * TM;
  let xo = (plane * p.Hp + oh0 * {{SH}}u) * p.Wp4 + (ow0 * {{SW}}u) / 4u;
  let W4 = p.Wp4;
  let wo = c * KK;
  var acc: array<f32, R * TM>;
  {{BODY}}
  if (L0 >= p.nLanes) { return; }
  let b = select(0.0, bias[min(c, arrayLength(&bias) - 1u)], p.hasBias != 0u);
  let ybase = (plane * p.yH + p.yr0 + oh0 * p.ysh) * p.yW + p.yc0 + ow0 * p.ysw;
  let rowStep = p.ysh * p.yW;
  {{STORE}}
}

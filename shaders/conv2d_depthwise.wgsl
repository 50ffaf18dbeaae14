// Depthwise conv2d (one input and one output channel per group), reading x directly: a padded copy
// would cost as much as the conv itself, which is memory-bound. One invocation computes an R x TM
// tile of one channel: its KH*KW weights and the tile's input window (NR rows x J columns, zero
// outside x) are loaded once, then every tap runs from registers (BODY and STORE are unrolled by
// conv.ts:depthwiseCode; loads and stores are vec4 when the rows allow).
struct P {
  H: u32, W: u32, C: u32, Ho: u32,
  Wo: u32, tilesW: u32, tilesH: u32, nLanes: u32,
  hasBias: u32, yH: u32, yW: u32, yr0: u32,
  yc0: u32, ysh: u32, ysw: u32, pt: i32,
  pl: i32, sh: u32, sw: u32, dh: u32,
  dw: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<{{XT}}>; // vec4f when rows are whole vec4s
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<{{YT}}>; // vec4f when rows are whole vec4s

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
  let ih0 = i32(oh0 * p.sh) - p.pt; // first input row / column of the window
  let iw0 = i32(ow0 * p.sw) - p.pl;
  let xb = plane * p.H * p.W;
  let wo = c * KK;
  var acc: array<f32, R * TM>;
  {{BODY}}
  if (L0 >= p.nLanes) { return; }
  let b = select(0.0, bias[min(c, arrayLength(&bias) - 1u)], p.hasBias != 0u);
  let ybase = (plane * p.yH + p.yr0 + oh0 * p.ysh) * p.yW + p.yc0 + ow0 * p.ysw;
  let rowStep = p.ysh * p.yW;
  {{STORE}}
}

// Depthwise conv2d (one input and one output channel per group) as a row stream, reading x
// directly (a padded copy would cost as much as the conv, which is memory-bound). One invocation
// owns a TM-column strip of one channel plane and walks down a chunk of its output rows: the
// kernel's window rows stay in named registers and move up as the strip advances, so each input
// row is loaded once per strip (not once per kernel row) and each output row is written at once,
// with no accumulator array (a runtime-indexed private array is read lane by lane on lavapipe).
// SETUP (weights, column offsets, the window's first rows) and ROW (load the new rows, the
// unrolled taps, the stores, the shift) come from engine/ops/conv-depthwise.ts.
struct P {
  H: u32, W: u32, C: u32, Ho: u32,
  Wo: u32, tilesW: u32, chunks: u32, RC: u32,
  nLanes: u32, hasBias: u32, yH: u32, yW: u32,
  yr0: u32, yc0: u32, ysh: u32, ysw: u32,
  pt: i32, pl: i32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<{{XT}}>; // vec4f when rows are whole vec4s
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<{{YT}}>; // vec4f when rows are whole vec4s

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let L0 = (wg.x + wg.y * nwg.x) * {{WG}}u + li;
  let live = L0 < p.nLanes; // lanes past the end redo the last strip and skip the stores
  let L = min(L0, p.nLanes - 1u);
  let tw = L % p.tilesW;
  let r1 = L / p.tilesW;
  let chunk = r1 % p.chunks;
  let plane = r1 / p.chunks; // n * C + c
  let c = plane % p.C;
  let ow0 = tw * {{TM}}u;
  let oh0 = chunk * p.RC;
  let oh1 = min(oh0 + p.RC, p.Ho);
  let iw0 = i32(ow0 * {{SW}}u) - p.pl; // first input column of the window
  let xb = plane * p.H * p.W;
  let wo = c * {{KK}}u;
  let b = select(0.0, bias[min(c, arrayLength(&bias) - 1u)], p.hasBias != 0u);
  let rowStep = p.ysh * p.yW;
  var ybase = (plane * p.yH + p.yr0 + oh0 * p.ysh) * p.yW + p.yc0 + ow0 * p.ysw;
  {{SETUP}}
  for (var oh = oh0; oh < oh1; oh += {{STEP}}u) { // STEP > 1: rows in groups (see conv-depthwise.ts)
    let ih0 = i32(oh * {{SH}}u) - p.pt; // first input row of this output row's window
    {{ROW}}
    ybase += rowStep * {{STEP}}u;
  }
}

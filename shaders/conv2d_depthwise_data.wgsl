// Backward-data of a strided depthwise conv2d in one pass, gather form: one invocation owns a
// TMX-column strip of one dx plane and walks down a chunk of it SH rows (one "step") at a time.
// The dx rows of a step, SH of them, read the gy rows t + e (e from a small fixed set per row
// parity), so the window of gy rows sits in named registers and moves up one gy row per step:
// each gy row is loaded once per strip, each dx pixel written once (vec4 stores where aligned),
// instead of one dispatch per stride phase that each re-read all of gy and stored every other
// column lane by lane. SETUP (weights, column offsets and checks, the window's first rows) and
// STEP (load the new gy row, the unrolled taps, the stores, the shift) come from
// engine/ops/conv-depthwise-data.ts.
struct P {
  H: u32, W: u32, C: u32, Ho: u32,
  Wo: u32, tilesW: u32, chunks: u32, RC: u32,
  nLanes: u32, steps: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> g4: array<vec4f>; // gy as vec4s (whole aligned vec4s of a row)
@group(0) @binding(2) var<storage, read> g1: array<f32>; // the same gy, one value at a time
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read_write> dx: array<{{DT}}>; // vec4f where the stores are aligned

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
  let iw0 = tw * {{TMX}}u; // first dx column of the strip (a multiple of the column stride)
  let u0 = i32(iw0 / {{SW}}u); // its gy column
  let t0 = chunk * p.RC;
  let t1 = min(t0 + p.RC, p.steps);
  let gb = plane * p.Ho * p.Wo;
  let wo = c * {{KK}}u;
  var db = plane * p.H * p.W + t0 * {{SH}}u * p.W + iw0;
  _ = &g4; _ = &g1; // both in the layout whichever the body uses
  {{SETUP}}
  for (var t = t0; t < t1; t++) {
    {{STEP}}
    db += {{SH}}u * p.W;
  }
}

// Depthwise conv2d on small planes (up to 64 pixels: MobileNet's 7, 4 and 2 px): one invocation
// computes Q whole neighbouring planes (channels c0 .. c0+Q-1 of one image), all in registers.
// BODY (engine/ops/conv-depthwise.ts) loads them as Q*H*W/4 vec4s, runs every tap from registers
// (every index, padding included, is a compile-time constant) and stores Q*Ho*Wo/4 vec4s: a
// copy's count of loads and stores. With Q = 4 the weights and biases load as vec4s too. A
// stride-2 backward-data phase (every other row and column of dx) stores scalars instead.
struct P { C: u32, nLanes: u32, hasBias: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> w: array<{{WT}}>; // vec4f: 4 planes' weights, KK vec4s
@group(0) @binding(3) var<storage, read> bias: array<{{BT}}>;
@group(0) @binding(4) var<storage, read_write> y: array<{{YT}}>; // f32: placed with a stride, lane by lane

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let L0 = (wg.x + wg.y * nwg.x) * {{WG}}u + li;
  if (L0 >= p.nLanes) { return; }
  let c0 = (L0 * {{Q}}u) % p.C; // first channel of the group (C % Q == 0: one image)
  let xb = L0 * {{XV}}u;
  let yb = L0 * {{YV}}u;
  {{BODY}}
}

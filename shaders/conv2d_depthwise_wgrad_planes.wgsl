// Depthwise conv2d weight gradient on small planes (up to 64 pixels, the planes of
// conv2d_depthwise_planes.wgsl): one invocation takes Q whole neighbouring planes of x and of gy
// (channels c0 .. c0+Q-1, of NB images) into registers with vec4 loads and sums gy * x per tap
// with every index and the padding compile-time constants. part[image block][c0*KK ..] gets its
// Q*KK sums (vec4 stores when Q = 4); conv-depthwise.ts sums part over the image blocks.
struct P { C: u32, nLanes: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> gy: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> part: array<{{PT}}>;

@compute @workgroup_size({{WG}})
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let L0 = (wg.x + wg.y * nwg.x) * {{WG}}u + li;
  if (L0 >= p.nLanes) { return; }
  // lane L0 = (image block, channel block): planes (nb*NB + i)*C + cb*Q .. +Q-1 for i < NB; its
  // sums go to part[nb][cb*Q*KK ..], so part is [N/NB][C*KK] (PV values per lane)
  let cb = L0 % {{CQ}}u;
  let nb = L0 / {{CQ}}u;
  let plane0 = nb * {{NB}}u * {{CQ}}u + cb; // in units of Q planes
  let xb = plane0 * {{XV}}u;
  let gb = plane0 * {{GV}}u;
  let pb = L0 * {{PV}}u;
  {{BODY}}
}

// Copies x, viewed as [outer, row], into out viewed as [outer, out_row] at column offset `at`:
// one launch per concat input (and the backward of slice: writing a gradient window).
// Works on raw 32-bit words, so it serves f32 and i32 alike; E = vec4u (sizes and offsets in
// vec4s) when row, output row and offset are multiples of 4: a quarter of the lanes, loads
// and index divisions.
struct Params { n: u32, row: u32, out_row: u32, at: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<{{E}}>;
@group(0) @binding(2) var<storage, read_write> out: array<{{E}}>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let o = i / p.row;
  out[o * p.out_row + p.at + (i - o * p.row)] = x[i];
}

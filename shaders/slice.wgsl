// out, viewed as [outer, row], takes the columns [at, at + row) of x viewed as [outer, in_row]:
// a slice along any axis (and the backward of concat). Raw 32-bit words: f32 and i32 alike;
// E = vec4u (sizes and offsets in vec4s) when row, input row and offset are multiples of 4.
struct Params { n: u32, row: u32, in_row: u32, at: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<{{E}}>;
@group(0) @binding(2) var<storage, read_write> out: array<{{E}}>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let o = i / p.row;
  out[i] = x[o * p.in_row + p.at + (i - o * p.row)];
}

// torch.gather: out[c] = x[c with c[axis] replaced by index[c]], over the index's shape.
// An index outside [0, axis_len) yields NaN: the GPU cannot raise, so the error shows as NaN.
struct Params { n: u32, rank: u32, axis: u32, len: u32, nan: f32, shape: array<vec4u, 2>, xs: array<vec4u, 2> }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> index: array<i32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let t = index[i];
  if (t < 0 || u32(t) >= p.len) { out[i] = p.nan; return; }
  var rem = i;
  var off = 0u;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let k = u32(d);
    let dim = p.shape[k / 4u][k % 4u];
    var c = rem % dim;
    rem = rem / dim;
    if (k == p.axis) { c = u32(t); }
    off += c * p.xs[k / 4u][k % 4u];
  }
  out[i] = x[off];
}

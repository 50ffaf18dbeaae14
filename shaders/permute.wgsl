// out[i] = x[src(i)]: out is x with permuted axes; in_strides are x's strides listed in output order.
struct Params { n: u32, rank: u32, shape: array<vec4u, 2>, in_strides: array<vec4u, 2> }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  var rem = i;
  var src = 0u;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let k = u32(d);
    let dim = p.shape[k / 4u][k % 4u];
    src += (rem % dim) * p.in_strides[k / 4u][k % 4u];
    rem = rem / dim;
  }
  out[i] = x[src];
}

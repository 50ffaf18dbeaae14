// Backward of gather without atomics: each element of dx sums the gradients of the index
// entries (along the axis, at its other coordinates) that point at it. Deterministic.
struct Params { n: u32, rank: u32, axis: u32, ilen: u32, xshape: array<vec4u, 2>, ishape: array<vec4u, 2>, istr: array<vec4u, 2> }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read> index: array<i32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  var rem = i;
  var ioff = 0u;
  var t = 0;
  var inside = true;
  for (var d = i32(p.rank) - 1; d >= 0; d--) {
    let k = u32(d);
    let c = rem % p.xshape[k / 4u][k % 4u];
    rem = rem / p.xshape[k / 4u][k % 4u];
    if (k == p.axis) { t = i32(c); } else {
      if (c >= p.ishape[k / 4u][k % 4u]) { inside = false; }
      ioff += c * p.istr[k / 4u][k % 4u];
    }
  }
  var s = 0.0;
  if (inside) {
    let st = p.istr[p.axis / 4u][p.axis % 4u];
    for (var j = 0u; j < p.ilen; j++) {
      let k = ioff + j * st;
      if (index[k] == t) { s += g[k]; }
    }
  }
  dx[i] = s;
}

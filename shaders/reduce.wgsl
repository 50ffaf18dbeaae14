// Reduces x viewed as [outer, R, inner] over R: out[o, i] = op_{r} x[o, r, i].
// One invocation per output; consecutive invocations read consecutive inner elements.
struct Params { outer: u32, r: u32, inner: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let j = gid.x + gid.y * nwg.x * 256u;
  if (j >= p.outer * p.inner) { return; }
  let o = j / p.inner;
  let i = j % p.inner;
  let base = o * p.r * p.inner + i;
  var acc: f32 = {{INIT}};
  for (var r = 0u; r < p.r; r++) {
    let v = x[base + r * p.inner];
    acc = {{ACC}};
  }
  out[j] = acc * p.scale;
}

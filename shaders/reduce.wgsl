// Reduces x viewed as [outer, R, inner] over R in chunks: out[o, c, i] = op over
// r in [c * chunk, min((c + 1) * chunk, R)) of x[o, r, i]. nchunks == 1 is a plain reduction;
// more chunks split a long reduction over more invocations (a second pass combines them).
// One invocation per output; consecutive invocations read consecutive inner elements.
struct Params { outer: u32, r: u32, inner: u32, scale: f32, chunk: u32, nchunks: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let j = gid.x + gid.y * nwg.x * 256u;
  let per = p.nchunks * p.inner;
  if (j >= p.outer * per) { return; }
  let o = j / per;
  let c = (j % per) / p.inner;
  let i = j % p.inner;
  let base = o * p.r * p.inner + i;
  var acc: f32 = {{INIT}};
  let end = min(p.r, (c + 1u) * p.chunk);
  for (var r = c * p.chunk; r < end; r++) {
    let v = x[base + r * p.inner];
    acc = {{ACC}};
  }
  out[j] = acc * p.scale;
}

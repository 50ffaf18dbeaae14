// clipGradNorm pass 1, one dispatch per gradient: partial[offset + j] = sum of g^2 over the
// contiguous chunk j of CHUNK elements (the partials of all gradients share one buffer).
struct Params { n: u32, offset: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<f32>;
@group(0) @binding(2) var<storage, read_write> partial: array<f32>;

const CHUNK = {{CHUNK}}u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let j = gid.x + gid.y * nwg.x * 64u;
  let start = j * CHUNK;
  if (start >= p.n) { return; }
  let end = min(p.n, start + CHUNK);
  var acc = 0.0;
  for (var i = start; i < end; i++) {
    let v = g[i];
    acc = fma(v, v, acc);
  }
  partial[p.offset + j] = acc;
}

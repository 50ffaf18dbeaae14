// FMA throughput ceiling: register-only vec4 fma chains, no memory traffic in the loop.
// {{CHAINS}} independent accumulators per invocation hide the FMA latency; the loop count
// and the coefficients come from uniforms so the compiler can neither unroll the work away
// nor constant-fold it. One f32 store per invocation keeps the result live.
struct Params { iters: u32, b: f32, c: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

const CHAINS = {{CHAINS}}u;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  let b = vec4f(p.b);
  let c = vec4f(p.c);
  var acc: array<vec4f, CHAINS>;
  for (var k = 0u; k < CHAINS; k++) { acc[k] = vec4f(f32(i), f32(k), 1.0, 2.0) * 1e-3; }
  for (var it = 0u; it < p.iters; it++) {
    // Unrolled by the backend: CHAINS independent dependency chains per iteration.
    for (var k = 0u; k < CHAINS; k++) { acc[k] = fma(acc[k], b, c); }
  }
  var s = vec4f(0.0);
  for (var k = 0u; k < CHAINS; k++) { s += acc[k]; }
  out[i] = s.x + s.y + s.z + s.w;
}

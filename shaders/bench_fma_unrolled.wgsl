// FMA throughput ceiling, straight-line variant: CHAINS named accumulators of type T (f32 or
// vec4f), the loop body unrolled UNROLL times in the text itself (bench/ceilings.ts writes the
// declarations, the body and the sum). For drivers that do not unroll loops or keep a
// dynamically indexed array in registers (SwiftShader's Subzero JIT keeps bench_fma.wgsl's
// `array<vec4f, CHAINS>` in memory: a load and a store per FMA). Loop count and coefficients
// come from uniforms so nothing folds away; one f32 store per invocation keeps the result live.
struct Params { iters: u32, b: f32, c: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size({{WG}})
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * {{WG}}u;
  let b = {{T}}(p.b);
  let c = {{T}}(p.c);
  let x = f32(i) * 1e-3;
  {{DECL}}
  for (var it = 0u; it < p.iters; it++) {
    {{BODY}}
  }
  let s = {{SUM}};
  out[i] = {{REDUCE}};
}

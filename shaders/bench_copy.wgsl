// Memory bandwidth ceiling: a large vec4 buffer copy. Each invocation moves {{PER}} vec4s,
// strided by the total invocation count so neighbouring invocations touch neighbouring
// addresses (what a SIMD-over-invocations CPU driver and a GPU both want).
struct Params { n4: u32, threads: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4f>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = gid.x + gid.y * nwg.x * 256u;
  for (var k = 0u; k < {{PER}}u; k++) {
    let i = t + k * p.threads;
    if (i < p.n4) { dst[i] = src[i]; }
  }
}

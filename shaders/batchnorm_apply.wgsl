// BatchNorm2d forward, elementwise: y = act(((x - K) - d) * gamma * invstd + beta) (normalise,
// affine and the optional ReLU/ReLU6 in one pass); stats from batchnorm_finalize.
// V is f32 or vec4f (vec4 when H*W % 4 == 0); `hw` counts V-elements per plane. Each invocation
// handles {{PER}} elements strided by the thread count, so neighbouring invocations touch
// neighbouring addresses (what lavapipe's SIMD-over-invocations wants).
struct Params { n: u32, C: u32, hw: u32, threads: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<{{V}}>;
@group(0) @binding(2) var<storage, read> stats: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> y: array<{{V}}>;

fn act(z: {{V}}) -> {{V}} { return {{ACT}}; }

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = gid.x + gid.y * nwg.x * 256u;
  for (var k = 0u; k < {{PER}}u; k++) {
    let i = t + k * p.threads;
    if (i >= p.n) { return; }
    let c = (i / p.hw) % p.C;
    let s = stats[2u * c];
    y[i] = act(((x[i] - s.x) - s.y) * s.w + stats[2u * c + 1u].x);
  }
}

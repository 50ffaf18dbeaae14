// Backward of global average pooling: dx[plane, :] = gy[plane] / (H*W), a broadcast. V is f32
// or vec4f (when H*W % 4 == 0; hw counts V-elements per plane); each invocation writes {{PER}}
// V-elements strided by the thread count (neighbouring invocations, neighbouring addresses).
struct Params { n: u32, hw: u32, threads: u32, scale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gy: array<f32>;
@group(0) @binding(2) var<storage, read_write> dx: array<{{V}}>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = gid.x + gid.y * nwg.x * 256u;
  for (var k = 0u; k < {{PER}}u; k++) {
    let i = t + k * p.threads;
    if (i >= p.n) { return; }
    dx[i] = {{V}}(gy[i / p.hw] * p.scale);
  }
}

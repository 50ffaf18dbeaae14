// y += alpha * x in place (gradient accumulation); E = vec4f when the size is a multiple of 4.
struct Params { n: u32, alpha: f32 } // n: elements of type E
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<{{E}}>;
@group(0) @binding(2) var<storage, read_write> y: array<{{E}}>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < p.n) { y[i] = y[i] + p.alpha * x[i]; }
}

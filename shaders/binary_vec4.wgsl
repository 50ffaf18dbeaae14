// out = f(a, b) for same-shape inputs whose size is a multiple of 4, four elements per lane:
// lavapipe runs every load lane by lane, and one vec4 load costs about what one f32 load does.
struct Params { n4: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<vec4f>;
@group(0) @binding(2) var<storage, read> b: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> out: array<vec4f>;

fn f(a: f32, b: f32) -> f32 { return {{EXPR}}; }

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n4) { return; }
  let u = a[i];
  let v = b[i];
  out[i] = vec4f(f(u.x, v.x), f(u.y, v.y), f(u.z, v.z), f(u.w, v.w));
}

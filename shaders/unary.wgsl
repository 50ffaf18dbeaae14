// y = f(x) elementwise; f is a compile-time expression in x with optional scalars a, b.
// E = vec4f when the size is a multiple of 4 (APPLY runs f on each component): lavapipe runs
// every load lane by lane, and one vec4 load costs about what one f32 load does.
struct Params { n: u32, a: f32, b: f32 } // n: elements of type E
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<{{E}}>;
@group(0) @binding(2) var<storage, read_write> y: array<{{E}}>;

fn f(x: f32, a: f32, b: f32) -> f32 { return {{EXPR}}; }

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < p.n) {
    let v = x[i];
    y[i] = {{APPLY}};
  }
}

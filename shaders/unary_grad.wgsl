// dx = g * f'(x, y) elementwise, where y = f(x) was saved by the forward pass.
// E = vec4f when the size is a multiple of 4 (as in unary.wgsl).
struct Params { n: u32, a: f32, b: f32 } // n: elements of type E
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<{{E}}>;
@group(0) @binding(2) var<storage, read> x: array<{{E}}>;
@group(0) @binding(3) var<storage, read> y: array<{{E}}>;
@group(0) @binding(4) var<storage, read_write> dx: array<{{E}}>;

fn df(x: f32, y: f32, a: f32, b: f32) -> f32 { return {{DEXPR}}; }

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < p.n) {
    let u = x[i];
    let v = y[i];
    dx[i] = g[i] * {{APPLY}};
  }
}

// dx = g * f'(s) elementwise, where s is the one tensor f' needs, saved by the forward pass: the
// input x or the output y = f(x) (engine/ops/unary.ts says which; for a constant f' the kernel
// never reads s). E = vec4f when the size is a multiple of 4 (as in unary.wgsl).
struct Params { n: u32, a: f32, b: f32 } // n: elements of type E
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<{{E}}>;
@group(0) @binding(2) var<storage, read> sv: array<{{E}}>;
@group(0) @binding(3) var<storage, read_write> dx: array<{{E}}>;

fn df(s: f32, a: f32, b: f32) -> f32 { return {{DEXPR}}; }

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i < p.n) {
    let v = sv[i];
    dx[i] = g[i] * {{APPLY}};
  }
}

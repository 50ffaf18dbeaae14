// One torch.optim.SGD step for one parameter tensor, in place:
//   d = g + wd * p
//   momentum: buf = first ? d : momentum * buf + (1 - dampening) * d;  d = nesterov ? d + momentum * buf : buf
//   p = p - lr * d
// Hyper-parameters are uniforms: a new LR never recompiles. `buf` is a 1-element dummy when momentum == 0.
// E is vec4f where the size is a multiple of 4 (n counts vec4s: lavapipe loads and stores a lane's
// vec4 for about half the cost of four scalars), else f32.
struct Params { n: u32, lr: f32, momentum: f32, dampening: f32, wd: f32, nesterov: u32, first: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<{{E}}>;
@group(0) @binding(2) var<storage, read_write> w: array<{{E}}>;
@group(0) @binding(3) var<storage, read_write> buf: array<{{E}}>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let wi = w[i];
  var d = g[i] + p.wd * wi;
  if (p.momentum != 0.0) {
    var b = d;
    if (p.first == 0u) { b = p.momentum * buf[i] + (1.0 - p.dampening) * d; }
    buf[i] = b;
    d = select(b, d + p.momentum * b, p.nesterov != 0u);
  }
  w[i] = wi - p.lr * d;
}

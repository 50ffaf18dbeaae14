// BatchNorm2d backward, elementwise dx (batchnorm_grad's maths) for planes whose size is not a
// multiple of 4, on contiguous g, x, dx [N, C, H, W]: aligned vec4s of the flat arrays, each
// component taking its own plane's parameters by a mask, as in batchnorm_apply_flat.
//   train: dx = gamma * invstd * (g' - dbeta / M - (x - mean) * invstd * dgamma / M)
//   eval:  dx = gamma * invstd * g'
// with g' = g * act'(z) and z recomputed from x exactly as batchnorm_apply_flat computed it.
struct Params { n4: u32, C: u32, hw: u32, M: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<vec4f>;
@group(0) @binding(2) var<storage, read> x: array<vec4f>;
@group(0) @binding(3) var<storage, read> stats: array<vec4f>;
@group(0) @binding(4) var<storage, read> dgamma: array<f32>;
@group(0) @binding(5) var<storage, read> dbeta: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<vec4f>;

const RUN = {{RUN}}u;

fn dact(z: vec4f) -> vec4f { return {{DACT}}; }

struct Prm { a: vec4f, b: vec4f } // (K, d, gamma * invstd, beta), (b0, b1, 0, 0)

fn prm(c: u32) -> Prm {
  let s = stats[2u * c];
  let b0 = select(0.0, dbeta[c] / f32(p.M), {{TRAIN}} == 1);
  let b1 = select(0.0, s.z * dgamma[c] / f32(p.M), {{TRAIN}} == 1);
  return Prm(vec4f(s.x, s.y, s.w, stats[2u * c + 1u].x), vec4f(b0, b1, 0.0, 0.0));
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let lane = gid.x + gid.y * nwg.x * 64u;
  let start = lane * RUN;
  if (start >= p.n4) { return; }
  let end = min(start + RUN, p.n4);
  let plane = (start * 4u) / p.hw;
  var bound = (plane + 1u) * p.hw;
  var c = plane % p.C;
  var cn = select(c + 1u, 0u, c + 1u == p.C);
  var u = prm(c);
  var w = prm(cn);
  for (var i = start; i < end; i++) {
    let e = i * 4u;
    if (e >= bound) {
      bound += p.hw;
      c = cn;
      cn = select(c + 1u, 0u, c + 1u == p.C);
      u = w;
      w = prm(cn);
    }
    let m = (vec4u(e) + vec4u(0u, 1u, 2u, 3u)) >= vec4u(bound);
    let K = select(vec4f(u.a.x), vec4f(w.a.x), m);
    let d = select(vec4f(u.a.y), vec4f(w.a.y), m);
    let scale = select(vec4f(u.a.z), vec4f(w.a.z), m);
    let beta = select(vec4f(u.a.w), vec4f(w.a.w), m);
    let b0 = select(vec4f(u.b.x), vec4f(w.b.x), m);
    let b1 = select(vec4f(u.b.y), vec4f(w.b.y), m);
    let xm = (x[i] - K) - d;
    let gg = g[i] * dact(xm * scale + beta); // z as in batchnorm_apply_flat
    let v = scale * (gg - b0 - xm * b1);
    if ({{ACCUM}} == 1) { dx[i] += v; } else { dx[i] = v; }
  }
}

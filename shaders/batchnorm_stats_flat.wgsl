// batchnorm_stats (same split, partial layout and modes) for planes whose size is not a multiple
// of 4 (7x7, 3x3, ...): x and g are read as aligned vec4s of the flat buffers, and a mask drops the
// components outside the lane's element range, so a 49-element plane costs 13-14 loads instead of
// 49 (lavapipe runs each load lane by lane, whatever its width). hw counts elements here.
// MODE 0: s1 = sum(x - K), s2 = sum((x - K)^2); x may have xc >= C channels per sample.
// MODE 1: s1 = sum(g'), s2 = sum(g' * (x - mean)), g' = g * act'(z); needs xc == C, so that g and
//         x share offsets (and vec4 boundaries).
struct Params { N: u32, C: u32, hw: u32, P: u32, segs: u32, S: u32, G: u32, xc: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> g: array<vec4f>;
@group(0) @binding(3) var<storage, read> stats: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> part: array<vec2f>;

fn dact(z: vec4f) -> vec4f { return {{DACT}}; }

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let id = gid.x + gid.y * nwg.x * 64u;
  if (id >= p.C * p.P) { return; }
  let c = id % p.C;
  let k = id / p.C;
  let n0 = (k / p.segs) * p.G;
  let n1 = min(n0 + p.G, p.N);
  let q0 = (k % p.segs) * p.S;
  let len = min(q0 + p.S, p.hw) - q0;
  let lanes = vec4u(0u, 1u, 2u, 3u);
  var s1 = vec4f(0.0);
  var s2 = vec4f(0.0);
  if ({{MODE}} == 0) {
    let k0 = c * p.hw;
    let K = vec4f(x[k0 / 4u][k0 % 4u]);
    for (var n = n0; n < n1; n++) {
      let b = (n * p.xc + c) * p.hw + q0;
      let e = b + len;
      for (var i = b / 4u; i * 4u < e; i++) {
        let j = vec4u(i * 4u) + lanes;
        let v = select(vec4f(0.0), x[i] - K, (j >= vec4u(b)) & (j < vec4u(e)));
        s1 += v;
        s2 += v * v;
      }
    }
  } else {
    let s = stats[2u * c]; // x - mean = (x - K) - d (batchnorm_finalize)
    let K = vec4f(s.x);
    let d = vec4f(s.y);
    let scale = vec4f(s.w);
    let beta = vec4f(stats[2u * c + 1u].x);
    for (var n = n0; n < n1; n++) {
      let b = (n * p.C + c) * p.hw + q0;
      let e = b + len;
      for (var i = b / 4u; i * 4u < e; i++) {
        let j = vec4u(i * 4u) + lanes;
        let m = (j >= vec4u(b)) & (j < vec4u(e));
        // masked components may hold another plane's values or whatever lies past the tensor's
        // end (NaN in poisoned tests): select, never multiply, them away
        let xr = (x[i] - K) - d;
        let xm = select(vec4f(0.0), xr, m);
        let gg = select(vec4f(0.0), g[i] * dact(xr * scale + beta), m); // z as in batchnorm_apply(_flat)
        s1 += gg;
        s2 += gg * xm;
      }
    }
  }
  part[id] = vec2f(dot(s1, vec4f(1.0)), dot(s2, vec4f(1.0)));
}

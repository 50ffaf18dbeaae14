// BatchNorm2d forward, elementwise, for planes whose size is not a multiple of 4 (7x7, 3x3, ...)
// of a contiguous x [N, C, H, W]: batchnorm_apply's maths on aligned vec4s of the flat array.
// Each lane owns a run of RUN vec4s; a vec4 may hold the end of one plane and the start of the
// next (hw >= 4: never more than two planes), and each component takes its own plane's
// parameters by a mask. One vec4 load and store per 4 elements instead of 4 scalar ones (lavapipe
// runs every load lane by lane, whatever its width); one division per lane.
struct Params { n4: u32, C: u32, hw: u32 } // n4: vec4s in x; hw: elements per plane
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> stats: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> y: array<vec4f>;

const RUN = {{RUN}}u;

fn act(z: vec4f) -> vec4f { return {{ACT}}; }

// (K, d, gamma * invstd, beta) of channel c (batchnorm_finalize)
fn prm(c: u32) -> vec4f {
  let s = stats[2u * c];
  return vec4f(s.x, s.y, s.w, stats[2u * c + 1u].x);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let lane = gid.x + gid.y * nwg.x * 64u;
  let start = lane * RUN;
  if (start >= p.n4) { return; }
  let end = min(start + RUN, p.n4);
  let plane = (start * 4u) / p.hw;
  var bound = (plane + 1u) * p.hw; // first element of the next plane
  var c = plane % p.C;
  var cn = select(c + 1u, 0u, c + 1u == p.C);
  var a = prm(c);
  var b = prm(cn);
  for (var i = start; i < end; i++) {
    let e = i * 4u;
    if (e >= bound) { // this vec4 starts in the next plane
      bound += p.hw;
      c = cn;
      cn = select(c + 1u, 0u, c + 1u == p.C);
      a = b;
      b = prm(cn);
    }
    let m = (vec4u(e) + vec4u(0u, 1u, 2u, 3u)) >= vec4u(bound); // components in the next plane
    let K = select(vec4f(a.x), vec4f(b.x), m);
    let d = select(vec4f(a.y), vec4f(b.y), m);
    let scale = select(vec4f(a.z), vec4f(b.z), m);
    let beta = select(vec4f(a.w), vec4f(b.w), m);
    // (x - K) - d as in batchnorm_apply, so batchnorm_grad_flat recomputes the same z
    y[i] = act(((x[i] - K) - d) * scale + beta);
  }
}

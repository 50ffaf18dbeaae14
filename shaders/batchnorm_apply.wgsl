// BatchNorm2d forward, elementwise: y = act(((x - K) - d) * gamma * invstd + beta) (normalise,
// affine and the optional ReLU/ReLU6 in one pass); stats from batchnorm_finalize.
// V is f32 or vec4f (vec4 when H*W % 4 == 0); `hw` counts V-elements per plane. Each lane owns
// a run of up to RUN V-elements inside one plane, so it finds its channel with one division and
// loads that channel's stats once (lavapipe runs divisions and loads lane by lane).
// x may be the first C channels of a buffer with xc >= C channels per sample (DenseNet's
// growing feature buffer): its plane n * C + c lies at n * xc + c.
struct Params { planes: u32, C: u32, hw: u32, runs: u32, xc: u32 } // runs: lanes per plane
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<{{V}}>;
@group(0) @binding(2) var<storage, read> stats: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> y: array<{{V}}>;

const RUN = {{RUN}}u;

fn act(z: {{V}}) -> {{V}} { return {{ACT}}; }

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let lane = gid.x + gid.y * nwg.x * 64u;
  let plane = lane / p.runs;
  if (plane >= p.planes) { return; }
  let c = plane % p.C;
  let s = stats[2u * c];
  // (x - K) - d, not x - mean: K is a sample of the channel, which keeps large offsets exact
  let K = {{V}}(s.x);
  let d = {{V}}(s.y);
  let scale = {{V}}(s.w);
  let beta = {{V}}(stats[2u * c + 1u].x);
  let start = plane * p.hw + (lane % p.runs) * RUN;
  let end = min(start + RUN, (plane + 1u) * p.hw);
  let xo = (plane / p.C) * (p.xc - p.C) * p.hw; // x's extra channels of the samples before
  for (var i = start; i < end; i++) { y[i] = act(((x[i + xo] - K) - d) * scale + beta); }
}

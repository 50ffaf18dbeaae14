// BatchNorm2d backward, elementwise dx with g' = g * act'(z) (the fused activation's backward; its
// input z is recomputed from x exactly as batchnorm_apply computed it, instead of reading y):
//   train: dx = gamma * invstd * (g' - (dbeta + xhat * dgamma) / M)   (through the batch stats)
//   eval:  dx = gamma * invstd * g'                                   (running stats are constants)
// dgamma, dbeta come from batchnorm_dparams. V is f32 or vec4f; each lane owns a run of up to
// RUN V-elements inside one plane, as in batchnorm_apply.
// x and dx may be the first C channels of buffers with xc / dc >= C channels per sample
// (DenseNet's growing feature buffer and its gradient); ACCUM == 1 adds dx into what dx holds
// (a dense layer's input gradient summed into the block's gradient without an extra pass).
struct Params { planes: u32, C: u32, hw: u32, runs: u32, M: u32, xc: u32, dc: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<{{V}}>;
@group(0) @binding(2) var<storage, read> x: array<{{V}}>;
@group(0) @binding(3) var<storage, read> stats: array<vec4f>;
@group(0) @binding(4) var<storage, read> dgamma: array<f32>;
@group(0) @binding(5) var<storage, read> dbeta: array<f32>;
@group(0) @binding(6) var<storage, read_write> dx: array<{{V}}>;

const RUN = {{RUN}}u;

fn dact(z: {{V}}) -> {{V}} { return {{DACT}}; }

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let lane = gid.x + gid.y * nwg.x * 64u;
  let plane = lane / p.runs;
  if (plane >= p.planes) { return; }
  let c = plane % p.C;
  let s = stats[2u * c]; // (K, d, invstd, gamma * invstd), mean = K + d
  let K = {{V}}(s.x); // x - mean = (x - K) - d, exact for large offsets (batchnorm_finalize)
  let d = {{V}}(s.y);
  let scale = {{V}}(s.w);
  let beta = {{V}}(stats[2u * c + 1u].x);
  // train: dx = gamma * invstd * (g' - dbeta / M - xhat * dgamma / M), xhat = (x - mean) * invstd
  let b0 = {{V}}(select(0.0, dbeta[c] / f32(p.M), {{TRAIN}} == 1));
  let b1 = {{V}}(select(0.0, s.z * dgamma[c] / f32(p.M), {{TRAIN}} == 1));
  let start = plane * p.hw + (lane % p.runs) * RUN;
  let end = min(start + RUN, (plane + 1u) * p.hw);
  let n = plane / p.C;
  let xo = n * (p.xc - p.C) * p.hw;
  let dO = n * (p.dc - p.C) * p.hw;
  for (var i = start; i < end; i++) {
    let xm = (x[i + xo] - K) - d;
    let gg = g[i] * dact(xm * scale + beta); // z as in batchnorm_apply
    let v = s.w * (gg - b0 - xm * b1);
    if ({{ACCUM}} == 1) { dx[i + dO] += v; } else { dx[i + dO] = v; }
  }
}

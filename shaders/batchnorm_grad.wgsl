// BatchNorm2d backward, elementwise dx with g' = g * act'(y) (the fused activation's backward):
//   train: dx = gamma * invstd * (g' - (dbeta + xhat * dgamma) / M)   (through the batch stats)
//   eval:  dx = gamma * invstd * g'                                   (running stats are constants)
// dgamma, dbeta come from batchnorm_dparams. V is f32 or vec4f and each invocation handles
// {{PER}} V-elements strided by the thread count, as in batchnorm_apply.
struct Params { n: u32, C: u32, hw: u32, threads: u32, M: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> g: array<{{V}}>;
@group(0) @binding(2) var<storage, read> y: array<{{V}}>;
@group(0) @binding(3) var<storage, read> x: array<{{V}}>;
@group(0) @binding(4) var<storage, read> stats: array<vec4f>;
@group(0) @binding(5) var<storage, read> dgamma: array<f32>;
@group(0) @binding(6) var<storage, read> dbeta: array<f32>;
@group(0) @binding(7) var<storage, read_write> dx: array<{{V}}>;

fn dact(y: {{V}}) -> {{V}} { return {{DACT}}; }

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = gid.x + gid.y * nwg.x * 256u;
  for (var k = 0u; k < {{PER}}u; k++) {
    let i = t + k * p.threads;
    if (i >= p.n) { return; }
    let c = (i / p.hw) % p.C;
    let s = stats[2u * c]; // (K, d, invstd, gamma * invstd), mean = K + d
    var gg = g[i] * dact(y[i]);
    if ({{TRAIN}} == 1) {
      let xhat = ((x[i] - s.x) - s.y) * s.z;
      gg -= (dbeta[c] + xhat * dgamma[c]) / f32(p.M);
    }
    dx[i] = s.w * gg;
  }
}

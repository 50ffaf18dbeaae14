// Re-lays conv weights w [Cout][CinG][KH][KW] as a GEMM operand [G][TH][TW][S][Fp]: per tap, rows
// of the fast channel dimension padded with zeros to Fp, so kernels read vec4 runs of them.
// Forward: fast = output channel, slow = input channel, tap (th, tw) = (kh, kw).
// Backward-data (TRANSPOSE = 1): fast = input channel, slow = output channel, and tap th takes
// kernel row kh0 + th * khStep (a flipped, possibly strided subset of the rows; likewise columns).
struct P {
  total: u32, CinG: u32, CoutG: u32, Fp: u32,
  TH: u32, TW: u32, KH: u32, KW: u32,
  kh0: i32, khStep: i32, kw0: i32, kwStep: i32,
  transpose: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<{{OUT}}>;

// V (4 where Fp is a multiple of 4) consecutive outputs per lane: the index arithmetic below is
// integer division, which lavapipe runs lane by lane, so it is paid once per V values, and the
// store is one vec4.
const V = {{V}}u;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = (gid.x + gid.y * nwg.x * 256u) * V;
  if (i >= p.total) { return; }
  let tr = p.transpose != 0u;
  let F = select(p.CoutG, p.CinG, tr);
  let S = select(p.CinG, p.CoutG, tr);
  let f0 = i % p.Fp;
  var r = i / p.Fp;
  let s = r % S;
  r = r / S;
  let tw = r % p.TW;
  r = r / p.TW;
  let th = r % p.TH;
  let g = r / p.TH;
  let kh = u32(p.kh0 + i32(th) * p.khStep);
  let kw = u32(p.kw0 + i32(tw) * p.kwStep);
  var v: array<f32, V>;
  for (var k = 0u; k < V; k++) {
    let f = f0 + k;
    let co = select(f, s, tr);
    let ci = select(s, f, tr);
    v[k] = select(0.0, w[min((((g * p.CoutG + co) * p.CinG + ci) * p.KH + kh) * p.KW + kw, arrayLength(&w) - 1u)], f < F);
  }
  {{STORE}}
}

// Copies x [N*C][H][W] into a zero-bordered buffer [N*C][Hp][Wp] (Wp a multiple of 4) so the conv
// kernels read aligned vec4 windows without bounds checks: xp[r][c] = x[r*sr - top][c*sc - left],
// 0 outside x. top/left may be negative (backward-data crops); sr/sc > 1 subsample (1x1 stride).
struct P { total: u32, H: u32, W: u32, Hp: u32, Wp: u32, top: i32, left: i32, sr: u32, sc: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> xp: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.total) { return; }
  let c = i % p.Wp;
  let t = i / p.Wp;
  let r = t % p.Hp;
  let plane = t / p.Hp;
  let ih = i32(r * p.sr) - p.top;
  let iw = i32(c * p.sc) - p.left;
  var v = 0.0;
  if (ih >= 0 && ih < i32(p.H) && iw >= 0 && iw < i32(p.W)) {
    v = x[(plane * p.H + u32(ih)) * p.W + u32(iw)];
  }
  xp[i] = v;
}

// Re-lays x [N*C][H][W] as a zero-bordered copy [N*C][Hp][Wp] (Wp a multiple of 4) so the conv
// kernels read aligned vec4 windows without bounds checks:
//   xp[r][c] = x[(r*sr - top) / UPH][(c*sc - left) / UPW] where that divides exactly, else 0.
// top/left may be negative (backward-data crops), sr/sc > 1 subsample (1x1 strides), UPH/UPW > 1
// spread x out (the zero-insertion of a strided backward-data).
// One lane per output row (all planes' rows in one range): the integer divisions, which lavapipe
// runs one lane at a time, happen once per row, and a workgroup covers several small planes, so
// lavapipe's per-workgroup cost is paid per 64 rows (one workgroup per plane spent ~2 ms of a
// 28 px ResNet layer's copy on it).
struct P { Hp: u32, Wp4: u32, H: u32, W: u32, top: i32, left: i32, sr: u32, sc: u32, planes: u32, rows: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> xp: array<vec4f>;

const UPH = {{UPH}};
const UPW = {{UPW}};

fn at(rowBase: u32, rowOk: bool, c: u32) -> f32 {
  let iw = i32(c * p.sc) - p.left;
  let q = iw / UPW;
  let ok = rowOk && iw >= 0 && q < i32(p.W) && q * UPW == iw;
  return select(0.0, x[rowBase + u32(select(0, q, ok))], ok);
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let row = (wg.x + wg.y * nwg.x) * 64u + li;
  if (row >= p.rows) { return; }
  let plane = row / p.Hp;
  let r = row % p.Hp;
  let ih = i32(r * p.sr) - p.top;
  let qh = ih / UPH;
  let rowOk = ih >= 0 && qh < i32(p.H) && qh * UPH == ih;
  let rowBase = (plane * p.H + u32(select(0, qh, rowOk))) * p.W;
  let out = row * p.Wp4;
  for (var c4 = 0u; c4 < p.Wp4; c4++) {
    let c = c4 * 4u;
    xp[out + c4] = vec4f(at(rowBase, rowOk, c), at(rowBase, rowOk, c + 1u), at(rowBase, rowOk, c + 2u), at(rowBase, rowOk, c + 3u));
  }
}

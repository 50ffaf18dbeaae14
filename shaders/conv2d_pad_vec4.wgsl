// conv2d_pad.wgsl's plain case (no subsampling, no spreading) for x rows of whole vec4s (W % 4 == 0):
//   xp[r][c] = x[r - top][c - left] inside x, else 0,
// read as vec4s. Output vec4 c4 holds x columns 4*(c4 + k0) + S .. + 3 (S = -left mod 4, a
// compile-time constant, k0 = floor(-left / 4)): components S..3 of x vec4 c4 + k0 and 0..S-1 of
// the next, which the next output vec4 reuses, so one vec4 load per output vec4 where the scalar
// kernel makes four bounds-checked scalar loads (lavapipe runs each load lane by lane).
// One lane per output row, as there.
struct P { Hp: u32, Wp4: u32, H: u32, W4: u32, top: i32, k0: i32, planes: u32, rows: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read_write> xp: array<vec4f>;

const S = {{SHIFT}}u;

fn ld(rowBase: u32, rowOk: bool, k: i32) -> vec4f {
  let ok = rowOk && k >= 0 && k < i32(p.W4);
  return select(vec4f(0.0), x[rowBase + u32(select(0, k, ok))], ok);
}

fn join(lo: vec4f, hi: vec4f) -> vec4f {
  if (S == 1u) { return vec4f(lo.yzw, hi.x); }
  if (S == 2u) { return vec4f(lo.zw, hi.xy); }
  if (S == 3u) { return vec4f(lo.w, hi.xyz); }
  return lo;
}

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let row = (wg.x + wg.y * nwg.x) * 64u + li;
  if (row >= p.rows) { return; }
  let plane = row / p.Hp;
  let ih = i32(row % p.Hp) - p.top;
  let rowOk = ih >= 0 && ih < i32(p.H);
  let rowBase = (plane * p.H + u32(select(0, ih, rowOk))) * p.W4;
  let out = row * p.Wp4;
  var lo = ld(rowBase, rowOk, p.k0);
  for (var c4 = 0u; c4 < p.Wp4; c4++) {
    if (S == 0u) {
      xp[out + c4] = ld(rowBase, rowOk, i32(c4) + p.k0);
    } else {
      let hi = ld(rowBase, rowOk, i32(c4) + p.k0 + 1);
      xp[out + c4] = join(lo, hi);
      lo = hi;
    }
  }
}

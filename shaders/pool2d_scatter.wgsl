// 2-D max / average pooling backward as a race-free scatter into a zeroed dx: outputs are
// visited in QH x QW passes (QH = ceil(KH / SH)); within a pass the outputs (oh, ow) with
// oh % QH == a, ow % QW == b have disjoint windows, so each dx element has at most one writer
// and `dx += ...` needs no atomics (deterministic). Work ~ outputs x window rather than inputs
// x covering windows, and no per-input index arithmetic.
// MAX adds gy at the recorded argmax; AVG spreads gy / divisor over the in-bounds window.
// Kernel, stride and padding are compile-time constants as in pool2d.wgsl.
struct Params { n: u32, H: u32, W: u32, oH: u32, oW: u32, a: u32, b: u32, cntH: u32, cntW: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> gy: array<f32>;
@group(0) @binding(2) var<storage, read> arg: array<i32>;
@group(0) @binding(3) var<storage, read_write> dx: array<f32>;

const KH = {{KH}}i;
const KW = {{KW}}i;
const SH = {{SH}}u;
const SW = {{SW}}u;
const PH = {{PH}}i;
const PW = {{PW}}i;
const QH = {{QH}}u;
const QW = {{QW}}u;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let t = gid.x + gid.y * nwg.x * 256u;
  if (t >= p.n) { return; }
  let row = t / p.cntW;
  let ow = p.b + (t - row * p.cntW) * QW;
  let plane = row / p.cntH;
  let oh = p.a + (row - plane * p.cntH) * QH;
  let o = (plane * p.oH + oh) * p.oW + ow;
  let base = plane * p.H * p.W;
  let g = gy[o];
  if ({{MAX}} == 1) {
    let at = arg[o];
    if (at >= 0) { dx[base + u32(at)] += g; }
  } else {
    let H = i32(p.H);
    let W = i32(p.W);
    let h0 = i32(oh * SH) - PH;
    let w0 = i32(ow * SW) - PW;
    var div: i32;
    if ({{INCLUDE_PAD}} == 1) {
      div = (min(h0 + KH, H + PH) - h0) * (min(w0 + KW, W + PW) - w0);
    } else {
      div = (min(h0 + KH, H) - max(h0, 0)) * (min(w0 + KW, W) - max(w0, 0));
    }
    let share = g / f32(div);
    for (var i = 0; i < KH; i++) {
      let h = h0 + i;
      if (h < 0 || h >= H) { continue; }
      for (var j = 0; j < KW; j++) {
        let w = w0 + j;
        if (w >= 0 && w < W) { dx[base + u32(h * W + w)] += share; }
      }
    }
  }
}

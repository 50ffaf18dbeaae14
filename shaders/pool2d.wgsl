// 2-D max / average pooling forward (NCHW), one invocation per output element. Kernel size,
// stride and padding are compile-time constants (KH, KW, SH, SW, PH, PW: op hyper-parameters,
// a handful per network) so the window loops unroll and divide by constants; sizes are uniforms.
// MAX: -inf padding, first maximum in row-major window order wins, NaN propagates (PyTorch);
//      ARG_STORE records the flat in-plane index h*W + w of the maximum for backward.
// AVG: zero padding; divisor kh*kw clipped at H+ph, W+pw (INCLUDE_PAD) or the number of
//      in-bounds cells (PyTorch's rules, ceil_mode = false).
struct Params { n: u32, H: u32, W: u32, oH: u32, oW: u32, ninf: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
{{ARG_DECL}}

const KH = {{KH}}i;
const KW = {{KW}}i;
const SH = {{SH}}u;
const SW = {{SW}}u;
const PH = {{PH}}i;
const PW = {{PW}}i;

fn isNan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let o = gid.x + gid.y * nwg.x * 256u;
  if (o >= p.n) { return; }
  let row = o / p.oW;
  let ow = o - row * p.oW;
  let plane = row / p.oH;
  let oh = row - plane * p.oH;
  let base = plane * p.H * p.W;
  let H = i32(p.H);
  let W = i32(p.W);
  let h0 = i32(oh * SH) - PH;
  let w0 = i32(ow * SW) - PW;
  if ({{MAX}} == 1) {
    var best = p.ninf;
    var bi = -1;
    for (var i = 0; i < KH; i++) {
      let h = h0 + i;
      if (h < 0 || h >= H) { continue; }
      for (var j = 0; j < KW; j++) {
        let w = w0 + j;
        if (w < 0 || w >= W) { continue; }
        let at = h * W + w;
        let v = x[base + u32(at)];
        if (bi < 0 || v > best || isNan(v)) {
          best = v;
          bi = at;
        }
      }
    }
    y[o] = best;
    {{ARG_STORE}}
  } else {
    var s = 0.0;
    for (var i = 0; i < KH; i++) {
      let h = h0 + i;
      if (h < 0 || h >= H) { continue; }
      for (var j = 0; j < KW; j++) {
        let w = w0 + j;
        if (w >= 0 && w < W) { s += x[base + u32(h * W + w)]; }
      }
    }
    var div: i32;
    if ({{INCLUDE_PAD}} == 1) {
      div = (min(h0 + KH, H + PH) - h0) * (min(w0 + KW, W + PW) - w0);
    } else {
      div = (min(h0 + KH, H) - max(h0, 0)) * (min(w0 + KW, W) - max(w0, 0));
    }
    y[o] = s / f32(div);
  }
}

// Adaptive average pooling (NCHW) to [oH, oW] with PyTorch's windows
//   start(i) = floor(i * H / oH), end(i) = ceil((i + 1) * H / oH).
// GRAD == 0: forward, one invocation per output. GRAD == 1: backward as a gather, one
// invocation per input element over the outputs i in [floor(h * oH / H), floor(((h+1) * oH - 1) / H)].
struct Params { n: u32, H: u32, W: u32, oH: u32, oW: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src: array<f32>;
@group(0) @binding(2) var<storage, read_write> dst: array<f32>;

fn start(i: u32, len: u32, olen: u32) -> u32 { return (i * len) / olen; }
fn end(i: u32, len: u32, olen: u32) -> u32 { return ((i + 1u) * len + olen - 1u) / olen; }

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  if ({{GRAD}} == 0) {
    let ow = i % p.oW;
    let oh = (i / p.oW) % p.oH;
    let plane = (i / (p.oW * p.oH)) * p.H * p.W;
    let hs = start(oh, p.H, p.oH);
    let he = end(oh, p.H, p.oH);
    let ws = start(ow, p.W, p.oW);
    let we = end(ow, p.W, p.oW);
    var s = 0.0;
    for (var h = hs; h < he; h++) {
      var rs = 0.0; // per-row partial sums: two-level summation for large (global) windows
      for (var w = ws; w < we; w++) { rs += src[plane + h * p.W + w]; }
      s += rs;
    }
    dst[i] = s / f32((he - hs) * (we - ws));
  } else {
    let w = i % p.W;
    let h = (i / p.W) % p.H;
    let base = (i / (p.W * p.H)) * p.oH * p.oW;
    var acc = 0.0;
    for (var oh = (h * p.oH) / p.H; oh <= ((h + 1u) * p.oH - 1u) / p.H && oh < p.oH; oh++) {
      let hs = start(oh, p.H, p.oH);
      let he = end(oh, p.H, p.oH);
      for (var ow = (w * p.oW) / p.W; ow <= ((w + 1u) * p.oW - 1u) / p.W && ow < p.oW; ow++) {
        let ws = start(ow, p.W, p.oW);
        let we = end(ow, p.W, p.oW);
        acc += src[base + oh * p.oW + ow] / f32((he - hs) * (we - ws));
      }
    }
    dst[i] = acc;
  }
}

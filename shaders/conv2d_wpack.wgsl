// Re-lays conv weights [Cout][CinG][KH][KW] as the GEMM operand [G][KH][KW][CinG][CoutGp]
// (output channels contiguous, padded with zeros to CoutGp) so a kernel reads vec4 runs of them.
// FLIP=1 instead writes the backward-data operand: spatially flipped, in/out swapped:
// [G][KH][KW][CoutG][CinGp] with out[g][kh][kw][co][ci] = w[g*CoutG+co][ci][KH-1-kh][KW-1-kw].
struct P { total: u32, CinG: u32, CoutG: u32, padC: u32, KH: u32, KW: u32, flip: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.total) { return; }
  // padC is the padded fastest dimension (CoutGp, or CinGp when flipping)
  let c = i % p.padC;
  var r = i / p.padC;
  let slowC = select(p.CinG, p.CoutG, p.flip != 0u); // the second-fastest dimension
  let fastC = select(p.CoutG, p.CinG, p.flip != 0u);
  let s = r % slowC;
  r = r / slowC;
  let kw = r % p.KW;
  r = r / p.KW;
  let kh = r % p.KH;
  let g = r / p.KH;
  var v = 0.0;
  if (c < fastC) {
    let co = select(c, s, p.flip != 0u);
    let ci = select(s, c, p.flip != 0u);
    let sh = select(kh, p.KH - 1u - kh, p.flip != 0u);
    let sw = select(kw, p.KW - 1u - kw, p.flip != 0u);
    v = w[(((g * p.CoutG + co) * p.CinG + ci) * p.KH + sh) * p.KW + sw];
  }
  out[i] = v;
}

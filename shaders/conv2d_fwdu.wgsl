// PROTOTYPE: forward conv with weights at compile-time-constant offsets (one dispatch per
// output-channel block x input-channel chunk; the weight binding offset selects the block).
struct P {
  Cin: u32, H: u32, W: u32, Cout: u32,
  Ho: u32, Wo: u32, tilesW: u32, nTiles: u32,
  sh: i32, dh: i32, pt: i32, pl: i32,
  xc0: u32, co0: u32, ncoValid: u32, first: u32,
  ncValid: u32, hasBias: u32,
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> w: array<vec4f>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> y: array<f32>;

const TM = {{TM}}u;
const TN4 = {{TN4}}u;
const KH = {{KH}}u;
const KW = {{KW}}u;
const SW = {{SW}}u;
const DW = {{DW}}u;
const CK = {{CK}}u;
const J = (TM - 1u) * SW + (KW - 1u) * DW + 1u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let t0 = wg.x * 64u + li;
  let t = min(t0, p.nTiles - 1u);
  let tw = t % p.tilesW;
  let r = t / p.tilesW;
  let oh = r % p.Ho;
  let n = r / p.Ho;
  let ow0 = tw * TM;
  let iw0 = i32(ow0 * SW) - p.pl;
  let HW = p.H * p.W;
  let xn = (n * p.Cin + p.xc0) * HW;

  var acc: array<vec4f, TM * TN4>;
  {{BODY}}

  if (t0 >= p.nTiles) { return; }
  for (var q = 0u; q < TN4; q++) {
    for (var c = 0u; c < 4u; c++) {
      let cl = q * 4u + c;
      if (cl < p.ncoValid) {
        let co = p.co0 + cl;
        let ybase = ((n * p.Cout + co) * p.Ho + oh) * p.Wo;
        let b = select(0.0, bias[min(co, arrayLength(&bias) - 1u)], p.hasBias != 0u);
        for (var m = 0u; m < TM; m++) {
          let i = ybase + ow0 + m;
          if (ow0 + m < p.Wo) {
            if (p.first != 0u) { y[i] = acc[m * TN4 + q][c] + b; } else { y[i] += acc[m * TN4 + q][c]; }
          }
        }
      }
    }
  }
}

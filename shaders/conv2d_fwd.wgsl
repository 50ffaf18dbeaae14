// Forward conv2d as an implicit GEMM (NCHW), no shared memory.
// One invocation computes TM consecutive output pixels of one output row x TN4*4 output channels
// of one group. The K loop runs kh (unrolled), ci (runtime), kw (unrolled): per (kh, ci) a window
// of J input values of one row is loaded once and reused by every (pixel, kw) pair.
// Weights come pre-laid-out as [G][KH][KW][CinG][CoutGp] (CoutGp: CoutG padded to TN4*4).
struct P {
  Cin: u32, H: u32, W: u32, Cout: u32,
  Ho: u32, Wo: u32, CinG: u32, CoutG: u32,
  CoutGp4: u32, tilesW: u32, nTiles: u32, coBlocks: u32,
  sh: i32, dh: i32, pt: i32, pl: i32,
  hasBias: u32,
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
const J = (TM - 1u) * SW + (KW - 1u) * DW + 1u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(local_invocation_index) li: u32) {
  let t0 = wg.x * 64u + li;
  let t = min(t0, p.nTiles - 1u); // out-of-range lanes recompute the last tile and skip the store
  let tw = t % p.tilesW;
  let r = t / p.tilesW;
  let oh = r % p.Ho;
  let n = r / p.Ho;
  let ow0 = tw * TM;
  let g = wg.y / p.coBlocks;
  let cob = wg.y % p.coBlocks;

  let iw0 = i32(ow0 * SW) - p.pl;
  var colOk: array<bool, J>;
  for (var j = 0u; j < J; j++) {
    let iw = iw0 + i32(j);
    colOk[j] = iw >= 0 && iw < i32(p.W);
  }

  var acc: array<vec4f, TM * TN4>;
  let HW = p.H * p.W;
  let xn = (n * p.Cin + g * p.CinG) * HW;
  let kwStride = p.CinG * p.CoutGp4;
  for (var kh = 0u; kh < KH; kh++) {
    let ih = i32(oh) * p.sh - p.pt + i32(kh) * p.dh;
    let rowOk = ih >= 0 && ih < i32(p.H);
    var ok: array<bool, J>;
    var off: array<u32, J>;
    for (var j = 0u; j < J; j++) {
      ok[j] = rowOk && colOk[j];
      off[j] = select(0u, xn + u32(ih) * p.W + u32(iw0 + i32(j)), ok[j]);
    }
    var wi = (g * KH + kh) * KW * kwStride + cob * TN4;
    for (var ci = 0u; ci < p.CinG; ci++) {
      var xs: array<f32, J>;
      for (var j = 0u; j < J; j++) {
        xs[j] = select(0.0, x[off[j]], ok[j]);
        off[j] += HW;
      }
      for (var kw = 0u; kw < KW; kw++) {
        for (var q = 0u; q < TN4; q++) {
          let wv = w[wi + kw * kwStride + q];
          for (var m = 0u; m < TM; m++) {
            acc[m * TN4 + q] = fma(vec4f(xs[m * SW + kw * DW]), wv, acc[m * TN4 + q]);
          }
        }
      }
      wi += p.CoutGp4;
    }
  }

  if (t0 >= p.nTiles) { return; }
  let coBase = cob * TN4 * 4u;
  for (var q = 0u; q < TN4; q++) {
    for (var c = 0u; c < 4u; c++) {
      let co = coBase + q * 4u + c;
      if (co < p.CoutG) {
        let cg = g * p.CoutG + co;
        let b = select(0.0, bias[min(cg, arrayLength(&bias) - 1u)], p.hasBias != 0u);
        let ybase = ((n * p.Cout + cg) * p.Ho + oh) * p.Wo;
        for (var m = 0u; m < TM; m++) {
          if (ow0 + m < p.Wo) { y[ybase + ow0 + m] = acc[m * TN4 + q][c] + b; }
        }
      }
    }
  }
}

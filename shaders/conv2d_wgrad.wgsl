// Weight gradient of conv2d: dw[co][ci][kh][kw] = sum over n, oh, ow of
//   gy[n][co][oh][ow] * x[n][ci][oh*SH + kh*DH - top][ow*SW + kw*DW - left],
// a GEMM whose reduction runs over the output pixels. Lanes split that reduction (split-K): each
// lane owns TCO output x TCI input channels (every tap, or one kernel row of them when
// khLanes = KH) and sums over one chunk of R x TM pixel
// tiles, so its x loads are data no neighbour reads (gy is shared, see below); the per-chunk
// partial sums [nChunks][Cout][CinG][KH][KW] are added up afterwards. x comes zero-padded as in
// the forward (conv2d_pad.wgsl) and gy padded to whole tiles, so the body (BODY, unrolled by
// conv.ts:wgradCode like the stores) has no bounds checks. With subgroups (SG_*), the lanes of
// a subgroup share the same gy tile and read it once between them (see wgradCode).
{{ENABLE}}
struct P {
  Hp: u32, Wp4: u32, xPlanes: u32, CinG: u32,
  gHp: u32, gWp4: u32, Cout: u32, CoutG: u32,
  tilesW: u32, tilesH: u32, nTiles: u32, tilesPerChunk: u32,
  coT: u32, ciT: u32, lanesPerChunk: u32, nLanes: u32,
  khLanes: u32, dhRows: u32, KKfull: u32,  // large kernels: one kernel row per lane (KK = KW taps)
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
@group(0) @binding(2) var<storage, read> gy: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> part: array<f32>;

const TM = {{TM}}u;
const R = {{R}}u;
const TCO = {{TCO}}u;
const TCI = {{TCI}}u;
const KK = {{KK}}u; // taps per lane: KH * KW, or KW when khLanes = KH
const SH = {{SH}}u;
const SW = {{SW}}u;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32{{SG_ARG}}) {
  let L0 = (wg.x + wg.y * nwg.x) * 64u + li;
  let L = min(L0, p.nLanes - 1u);
  let chunk = L / p.lanesPerChunk;
  let rem0 = L % p.lanesPerChunk;
  let kh = rem0 % p.khLanes;
  let rem = rem0 / p.khLanes;
  let g = rem / (p.coT * p.ciT);
  let co0 = ((rem / p.ciT) % p.coT) * TCO;
  let ci0 = (rem % p.ciT) * TCI;

  let gPlane = p.gHp * p.gWp4;
  let xPlane = p.Hp * p.Wp4;
  var gb: array<u32, TCO>;
  for (var j = 0u; j < TCO; j++) { gb[j] = (g * p.CoutG + min(co0 + j, p.CoutG - 1u)) * gPlane; }
  var xb: array<u32, TCI>;
  for (var i = 0u; i < TCI; i++) { xb[i] = (g * p.CinG + min(ci0 + i, p.CinG - 1u)) * xPlane; }

  {{SG_PRE}}
  var acc: array<f32, TCO * TCI * KK>;
  let tEnd = min((chunk + 1u) * p.tilesPerChunk, p.nTiles);
  for (var t = chunk * p.tilesPerChunk; t < tEnd; t++) {
    let tw = t % p.tilesW;
    let r1 = t / p.tilesW;
    let th = r1 % p.tilesH;
    let n = r1 / p.tilesH;
    let gpos = n * p.Cout * gPlane + th * R * p.gWp4 + tw * (TM / 4u);
    let xpos = n * p.xPlanes * xPlane + (th * R * SH + kh * p.dhRows) * p.Wp4 + (tw * TM * SW) / 4u;
    let gW4 = p.gWp4;
    let xW4 = p.Wp4;
    {{BODY}}
  }

  if (L0 >= p.nLanes) { return; }
  {{STORE}}
}

// Winograd F(MxM, 3x3) input transform reading the unpadded input directly (no conv2d_pad copy):
// V[k][p][c] = (Bᵀ d B)[k] for the (M+2)x(M+2) window d of tile p of input channel c, where the
// window starts at row th*M - pt, column tw*M - pl of x and reads zero outside x (the conv's
// padding, or a crop where pt / pl < 0). Lane layout and V as in conv2d_winograd_input.wgsl.
// X_ELEM vec4f (planes of whole vec4s): each window row is read as the aligned vec4s covering it
// (its offset in the first one is a compile-time constant, see engine/ops/conv-winograd.ts), so 2-3
// loads per row instead of 6; f32: scalar loads. Loads are clamped into x and each value is then
// zeroed unless its row, column and channel are real. BODY is generated unrolled by
// engine/ops/conv-winograd.ts (constant indices keep the values in registers on lavapipe).
struct P {
  H: i32, W: i32, pt: i32, pl: i32,       // x's rows and columns, top and left padding (negative: crop)
  C: u32, C4: u32, groupsW: u32, tilesW: u32, // channels of x, Cin4 / 4, lane groups per tile row, tiles per row
  tilesH: u32, P: u32, nLanes: u32, n0: u32, // tiles per column, tiles per chunk, lanes of this chunk, its first image
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<{{X_ELEM}}>;
@group(0) @binding(2) var<storage, read_write> v: array<vec4f>;

@compute @workgroup_size(64)
fn main(@builtin(workgroup_id) wg: vec3u, @builtin(num_workgroups) nwg: vec3u, @builtin(local_invocation_index) li: u32) {
  let lane = (wg.x + wg.y * nwg.x) * 64u + li;
  if (lane >= p.nLanes) { return; }
  let c4 = lane % p.C4;
  let r = lane / p.C4;
  let gw = r % p.groupsW;
  let r2 = r / p.groupsW;
  let th = r2 % p.tilesH;
  let n = r2 / p.tilesH; // image within the chunk
  let tw0 = gw * {{TT}}u;
  let p0 = (n * p.tilesH + th) * p.tilesW + tw0; // first tile of this lane
  let H = p.H;
  let W = p.W;
  let ih0 = i32(th * {{M}}u) - p.pt; // the window's first row and column
  let cb0 = i32(tw0 * {{M}}u) - p.pl;
  let lastU = arrayLength(&x) - 1u; // loads clamp with min(u32(i), lastU): a negative i becomes huge
  // per channel: the plane's first element (clamped to a real channel) and whether it is real
  var xo: array<i32, 4>;
  var ok: array<bool, 4>;
  for (var q = 0u; q < 4u; q++) {
    let c = c4 * 4u + q;
    xo[q] = i32(((p.n0 + n) * p.C + min(c, p.C - 1u)) * u32(H * W));
    ok[q] = c < p.C;
  }
  {{BODY}}
}

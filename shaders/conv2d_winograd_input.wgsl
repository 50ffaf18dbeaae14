// Winograd F(MxM, 3x3) input transform: V[k][p][c] = (Bᵀ d B)[k] for the (M+2)x(M+2) window d of
// tile p of input channel c, read from the zero-padded input (conv2d_pad) as aligned vec4 rows.
// One lane owns TT horizontally adjacent tiles (TT * M = 4 columns: the window starts on a vec4)
// and 4 channels, so every transform value is a vec4 across channels and is stored as one vec4
// of V's [tiles][Cin4] rows (the GEMM's A operand). Channels past C are written as zeros.
// BODY (loads, transform, stores) is generated unrolled by engine/ops/conv-winograd.ts:
// lavapipe keeps only constant-indexed values in registers.
struct P {
  Hp: u32, Wp4: u32, C: u32, C4: u32,     // padded rows and row length / 4, channels of x, Cin4 / 4
  groupsW: u32, tilesW: u32, tilesH: u32, P: u32, // lane groups per tile row, tiles per row / column, tiles per chunk
  nLanes: u32, n0: u32,                   // lanes of this chunk, its first image
}
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> x: array<vec4f>;
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
  let plane4 = p.Hp * p.Wp4;
  let rowOff = th * {{M}}u * p.Wp4 + tw0 * {{M}}u / 4u;
  // per channel: the window's first vec4 (clamped to a real channel) and whether it is real
  var xo: array<u32, 4>;
  var ok: array<f32, 4>;
  for (var q = 0u; q < 4u; q++) {
    let c = c4 * 4u + q;
    xo[q] = ((p.n0 + n) * p.C + min(c, p.C - 1u)) * plane4 + rowOff;
    ok[q] = select(0.0, 1.0, c < p.C);
  }
  let W4 = p.Wp4;
  {{BODY}}
}

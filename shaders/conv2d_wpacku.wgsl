// PROTOTYPE packing: [G][coBlocks][ciChunks] blocks of [CK][KH][KW][TN], each padded to blk floats.
struct P { total: u32, CinG: u32, CoutG: u32, TN: u32, CK: u32, KH: u32, KW: u32, blk: u32, coBlocks: u32, ciChunks: u32 }
@group(0) @binding(0) var<uniform> p: P;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.total) { return; }
  let b = i / p.blk;
  var e = i % p.blk;
  var v = 0.0;
  if (e < p.CK * p.KH * p.KW * p.TN) {
    let c = e % p.TN; e = e / p.TN;
    let kw = e % p.KW; e = e / p.KW;
    let kh = e % p.KH;
    let cl = e / p.KH;
    let chunk = b % p.ciChunks;
    let cob = (b / p.ciChunks) % p.coBlocks;
    let g = b / (p.ciChunks * p.coBlocks);
    let co = cob * p.TN + c;
    let ci = chunk * p.CK + cl;
    if (co < p.CoutG && ci < p.CinG) {
      v = w[(((g * p.CoutG + co) * p.CinG + ci) * p.KH + kh) * p.KW + kw];
    }
  }
  out[i] = v;
}

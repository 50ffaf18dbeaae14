// KD loss reduction to a scalar: out = sum(loss) / (wscale * sum(w)) (or / n without weights),
// and scale = 1 / that denominator (what the saved gradient rows are multiplied by in backward).
// One workgroup: each invocation sums a strided slice, then invocation 0 adds the 64 slices
// (a single barrier: cheap on lavapipe).
struct Params { n: u32, m: u32, hasW: u32, wscale: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> loss: array<f32>;
@group(0) @binding(2) var<storage, read> weights: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
@group(0) @binding(4) var<storage, read_write> scale: array<f32>;

var<workgroup> sl: array<f32, 64>;
var<workgroup> sw: array<f32, 64>;

@compute @workgroup_size(64)
fn main(@builtin(local_invocation_index) li: u32) {
  var a = 0.0;
  for (var e = li; e < p.n; e += 64u) { a += loss[e]; }
  var b = 0.0;
  if (p.hasW == 1u) {
    for (var e = li; e < p.m; e += 64u) { b += weights[e]; }
  }
  sl[li] = a;
  sw[li] = b;
  workgroupBarrier();
  if (li == 0u) {
    var s = 0.0;
    var ws = 0.0;
    for (var k = 0u; k < 64u; k++) {
      s += sl[k];
      ws += sw[k];
    }
    var denom = f32(p.n);
    if (p.hasW == 1u) { denom = ws * p.wscale; }
    out[0] = s / denom;
    scale[0] = 1.0 / denom;
  }
}

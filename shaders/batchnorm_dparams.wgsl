// BatchNorm2d backward, per channel: combines the partial sums (sum g', sum g'(x - mean)) into
// dbeta = sum g' and dgamma = invstd * sum g'(x - mean).
struct Params { C: u32, P: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> part: array<vec2f>;
@group(0) @binding(2) var<storage, read> stats: array<vec4f>;
@group(0) @binding(3) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(4) var<storage, read_write> dbeta: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u) {
  let c = gid.x;
  if (c >= p.C) { return; }
  var s1 = 0.0;
  var s2 = 0.0;
  for (var k = 0u; k < p.P; k++) {
    let s = part[k * p.C + c];
    s1 += s.x;
    s2 += s.y;
  }
  dbeta[c] = s1;
  dgamma[c] = s2 * stats[2u * c].z;
}

// clipGradNorm pass 2, one workgroup: norm = sqrt(sum of all partials),
// coef = min(1, maxNorm / (norm + 1e-6)) (torch.nn.utils.clip_grad_norm_).
struct Params { count: u32, maxNorm: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> partial: array<f32>;
@group(0) @binding(2) var<storage, read_write> norm: array<f32>;
@group(0) @binding(3) var<storage, read_write> coef: array<f32>;

var<workgroup> sums: array<f32, 256>;

@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) t: u32) {
  var acc = 0.0;
  for (var i = t; i < p.count; i += 256u) { acc += partial[i]; }
  sums[t] = acc;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s >>= 1u) {
    if (t < s) { sums[t] += sums[t + s]; }
    workgroupBarrier();
  }
  if (t == 0u) {
    let n = sqrt(sums[0]);
    norm[0] = n;
    coef[0] = min(1.0, p.maxNorm / (n + 1e-6));
  }
}

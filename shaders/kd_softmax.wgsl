// Fused softmax knowledge-distillation loss, one invocation per sample i (row of C logits):
//   l_i = (1 - alpha) CE(zs_i, y_i) + alpha T^2 KL(pt_i || softmax(zs_i / T)),  pt_i = softmax(zt_i / T)
// (TEACHER_PROB == 1: zt holds probabilities and pt_i = softmax(log(zt_i) / T); zero-probability
// classes get a very negative finite logit so they carry exactly zero mass and add nothing).
// Writes loss[i] = w_i l_i and the unnormalised gradient
//   grad[i, c] = w_i [(1 - alpha)(softmax(zs)_c - [c == y]) + alpha T (softmax(zs/T)_c - pt_c)],
// scaled later by dL/dloss / sum(w). Everything goes through max-shifted log-sum-exp, so logits
// of 1e4 and T in [0.5, 20] stay finite; each sum excludes its max term (exactly 1) and goes
// through log1p, so a confident row's small loss keeps its relative precision.
// An out-of-range label gives a NaN loss.
struct Params { N: u32, C: u32, T: f32, alpha: f32, hasW: u32, nan: f32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> zs: array<f32>;
@group(0) @binding(2) var<storage, read> zt: array<f32>;
@group(0) @binding(3) var<storage, read> labels: array<i32>;
@group(0) @binding(4) var<storage, read> weights: array<f32>;
@group(0) @binding(5) var<storage, read_write> loss: array<f32>;
@group(0) @binding(6) var<storage, read_write> grad: array<f32>;

const ZERO_MASS: f32 = -1e30;

//#include "kd_common.wgsl"

// Tempered teacher logit of class at index j.
fn teacher(j: u32) -> f32 {
  let v = zt[j];
  if ({{TEACHER_PROB}} == 1) {
    if (v > 0.0) { return log(v) / p.T; }
    return ZERO_MASS;
  }
  return v / p.T;
}

// Tempered teacher minus tempered student logit, from the raw difference when both are logits.
fn delta(j: u32, invT: f32) -> f32 {
  if ({{TEACHER_PROB}} == 1) { return teacher(j) - zs[j] * invT; }
  return (zt[j] - zs[j]) * invT;
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 64u;
  if (i >= p.N) { return; }
  let base = i * p.C;
  let T = p.T;
  let invT = 1.0 / T;
  // pass 1: maxima
  var ms = zs[base];
  var mt = teacher(base);
  var as_ = 0u;
  var at = 0u;
  for (var c = 1u; c < p.C; c++) {
    let s = zs[base + c];
    if (s > ms) { ms = s; as_ = c; }
    let t = teacher(base + c);
    if (t > mt) { mt = t; at = c; }
  }
  let msT = ms * invT;
  // pass 2: log-sum-exps of zs, zs / T and the tempered teacher (max terms left out: they are 1)
  var e1 = 0.0;
  var eS = 0.0;
  var eT = 0.0;
  for (var c = 0u; c < p.C; c++) {
    let s = zs[base + c];
    if (c != as_) {
      e1 += exp(s - ms);
      eS += exp(s * invT - msT);
    }
    if (c != at) { eT += exp(teacher(base + c) - mt); }
  }
  // lse = max + l; kept apart so that (v - max) - l never rounds l away against a large max
  let l1 = log1p(e1);
  // KL = sum_c pt_c x_c with x_c = logPt_c - logPsT_c = delta_c - K,
  //   K = (mt - msT) + log((1 + eT) / (1 + eS)),
  // so no log-sum-exp is rounded on its own against its max. Each class adds
  //   pt_c x_c + (ps_c - pt_c) = pt_c phi(e^-x_c - 1)      (the added terms sum to 0),
  // by series when |x_c| < 0.25 (non-negative terms, insensitive to the rounding of K: a
  // near-zero KL keeps its relative precision), else as (ps_c - pt_c) + pt_c x_c.
  var dmax = mt - msT;
  if ({{TEACHER_PROB}} == 0) { dmax = (zt[base + at] - ms) * invT; }
  let K = dmax + log((1.0 + eT) / (1.0 + eS));
  let y = labels[i];
  // pass 3: CE, KL and the gradient row
  var w = 1.0;
  if (p.hasW == 1u) { w = weights[i]; }
  let a = p.alpha;
  var kl = 0.0;
  var sy = 0.0;
  for (var c = 0u; c < p.C; c++) {
    let s = zs[base + c];
    // Probabilities as e_c / (1 + rest); at a row's max class p - 1 = -rest / (1 + rest) and
    // ps - pt = (restT - restS) / ((1 + restS)(1 + restT)): no cancellation for confident rows.
    var pt = exp(teacher(base + c) - mt) / (1.0 + eT);
    if (c == at) { pt = 1.0 / (1.0 + eT); }
    var psT = exp(s * invT - msT) / (1.0 + eS);
    if (c == as_) { psT = 1.0 / (1.0 + eS); }
    if (pt > 0.0) {
      let xc = delta(base + c, invT) - K;
      if (abs(xc) < 0.25) { kl += pt * phiSmall(expm1Small(-xc)); } else { kl += (psT - pt) + pt * xc; }
    } else {
      kl += psT; // 0 log 0 = 0, plus this class's (ps - pt) so that the added terms still sum to 0
    }
    var dce = exp(s - ms) / (1.0 + e1);
    if (c == as_) { dce = 1.0 / (1.0 + e1); }
    if (i32(c) == y) {
      sy = s;
      if (c == as_) { dce = -e1 / (1.0 + e1); } else { dce -= 1.0; }
    }
    var dkl = psT - pt;
    if (c == as_ && c == at) { dkl = (eT - eS) / ((1.0 + eS) * (1.0 + eT)); }
    grad[base + c] = w * ((1.0 - a) * dce + a * T * dkl);
  }
  var l = w * ((1.0 - a) * ((ms - sy) + l1) + a * T * T * kl);
  if (y < 0 || y >= i32(p.C)) { l = p.nan; }
  loss[i] = l;
}

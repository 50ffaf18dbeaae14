// y = x * keep / (1 - p), keep = u >= p with u drawn from a counter-based hash of (key, index):
// backward regenerates the same mask from the key instead of storing it.
struct Params { n: u32, p: f32, scale: f32, k0: u32, k1: u32 }
@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;

// PCG-RXS-M-XS 32-bit output permutation (Jarzynski & Olano, "Hash Functions for GPU Rendering").
fn pcg(v: u32) -> u32 {
  let s = v * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3u, @builtin(num_workgroups) nwg: vec3u) {
  let i = gid.x + gid.y * nwg.x * 256u;
  if (i >= p.n) { return; }
  let h = pcg(pcg(i ^ p.k0) + p.k1);
  let u = f32(h >> 8u) * (1.0 / 16777216.0);
  y[i] = select(0.0, x[i] * p.scale, u >= p.p);
}

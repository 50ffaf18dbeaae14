// Shared by the KD kernels (included).
// log(1 + u) for u >= 0, accurate for small u: 2 atanh(z), z = u / (2 + u), by its series when
// u < 0.25 (z < 0.12: the z^11 term is below f32 precision). The usual log(w) * u / (w - 1)
// trick does not survive lavapipe's fast-math folding, so it is not used.
fn log1p(u: f32) -> f32 {
  if (u < 0.25) {
    let z = u / (2.0 + u);
    let z2 = z * z;
    return 2.0 * z * (1.0 + z2 * (1.0 / 3.0 + z2 * (0.2 + z2 * (1.0 / 7.0 + z2 * (1.0 / 9.0)))));
  }
  return log(1.0 + u);
}

// e^x - 1 for |x| <= 0.25 (Taylor to x^8: relative error < 1e-9).
fn expm1Small(x: f32) -> f32 {
  return x * (1.0 + x * (0.5 + x * (1.0 / 6.0 + x * (1.0 / 24.0 + x * (1.0 / 120.0 + x * (1.0 / 720.0 + x * (1.0 / 5040.0 + x * (1.0 / 40320.0))))))));
}

// phi(u) = u - log(1 + u) for |u| < 0.3 by its series (to u^12: relative error < 1e-6).
// pt * phi(ps / pt - 1) is one class's KL term pt log(pt / ps) plus (ps - pt); those extra
// terms sum to zero, so a KL summed this way has only non-negative terms, no cancellation, and
// is first-order insensitive to rounding of the normalisers: a near-zero KL stays accurate.
fn phiSmall(u: f32) -> f32 {
  let s = 1.0 / 2.0 - u * (1.0 / 3.0 - u * (1.0 / 4.0 - u * (1.0 / 5.0 - u * (1.0 / 6.0 - u * (1.0 / 7.0 - u * (1.0 / 8.0 - u * (1.0 / 9.0 - u * (1.0 / 10.0 - u * (1.0 / 11.0 - u / 12.0)))))))));
  return u * u * s;
}

// Training-time augmentation on uint8 CHW images, fused with normalisation:
// random crop with zero padding, optional horizontal flip (off by default:
// laterality matters in chest X-rays), and a small random rotation/scale.
// All of it is one inverse mapping per output pixel, sampled bilinearly, so
// the cost is a single pass. Randomness comes from the caller's Rng, which
// the trainer seeds per (seed, model, epoch, step) for reproducibility.
import type { Rng } from '../../engine/rng.ts';

export interface AugmentOptions {
  /** Random crop after zero-padding by this many pixels on each side (0 = off). */
  pad?: number;
  /** Random horizontal flip with probability 0.5 (default false). */
  hflip?: boolean;
  /** Max rotation in degrees (uniform in [-rotate, rotate]; 0 = off). */
  rotate?: number;
  /** Max relative scale change (uniform in [1-scale, 1+scale]; 0 = off). */
  scale?: number;
}

/** Mild defaults for small X-ray images: pad size/14 (2 px at 28), +-5 degrees, +-5 % scale, no flip. */
export function defaultAugment(size: number): AugmentOptions {
  return { pad: Math.max(1, Math.round(size / 14)), rotate: 5, scale: 0.05, hflip: false };
}

/** Parameters drawn for one sample (exposed for tests/debugging). */
export interface AugmentDraw {
  dx: number;
  dy: number;
  flip: boolean;
  angle: number;
  scale: number;
}

export function drawAugment(opts: AugmentOptions, rng: Rng): AugmentDraw {
  const p = opts.pad ?? 0;
  return {
    dx: p > 0 ? rng.int(2 * p + 1) - p : 0,
    dy: p > 0 ? rng.int(2 * p + 1) - p : 0,
    flip: !!opts.hflip && rng.next() < 0.5,
    angle: opts.rotate ? rng.uniform(-opts.rotate, opts.rotate) * (Math.PI / 180) : 0,
    scale: opts.scale ? rng.uniform(1 - opts.scale, 1 + opts.scale) : 1,
  };
}

/**
 * Write one augmented, normalised image ((v/255 - mean)/std) into out[offset..].
 * Pixels mapped from outside the source are black (raw 0), like zero padding before normalisation.
 */
export function augmentInto(
  src: Uint8Array,
  channels: number,
  h: number,
  w: number,
  d: AugmentDraw,
  mean: number[],
  std: number[],
  out: Float32Array,
  offset: number,
): void {
  const hw = h * w;
  if (d.angle === 0 && d.scale === 1) {
    // Integer shift (+flip): exact copy, no interpolation.
    for (let c = 0; c < channels; c++) {
      const a = 1 / (255 * std[c]);
      const b = -mean[c] / std[c];
      const base = c * hw;
      for (let y = 0; y < h; y++) {
        const sy = y + d.dy;
        for (let x = 0; x < w; x++) {
          const fx = d.flip ? w - 1 - x : x;
          const sx = fx + d.dx;
          const v = sy >= 0 && sy < h && sx >= 0 && sx < w ? src[base + sy * w + sx] : 0;
          out[offset + base + y * w + x] = v * a + b;
        }
      }
    }
    return;
  }
  const cx = (w - 1) / 2;
  const cy = (h - 1) / 2;
  const cos = Math.cos(d.angle) / d.scale;
  const sin = Math.sin(d.angle) / d.scale;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const fx = (d.flip ? w - 1 - x : x) - cx;
      const fy = y - cy;
      // Inverse rotation/scale about the centre, then the crop offset.
      const sx = cos * fx + sin * fy + cx + d.dx;
      const sy = -sin * fx + cos * fy + cy + d.dy;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const ax = sx - x0;
      const ay = sy - y0;
      for (let c = 0; c < channels; c++) {
        const base = c * hw;
        const at = (xx: number, yy: number) => (xx >= 0 && xx < w && yy >= 0 && yy < h ? src[base + yy * w + xx] : 0);
        const v =
          (1 - ay) * ((1 - ax) * at(x0, y0) + ax * at(x0 + 1, y0)) + ay * ((1 - ax) * at(x0, y0 + 1) + ax * at(x0 + 1, y0 + 1));
        out[offset + base + y * w + x] = (v / 255 - mean[c]) / std[c];
      }
    }
  }
}

/** Plain normalisation, no augmentation. */
export function normaliseInto(src: Uint8Array, channels: number, hw: number, mean: number[], std: number[], out: Float32Array, offset: number): void {
  for (let c = 0; c < channels; c++) {
    const a = 1 / (255 * std[c]);
    const b = -mean[c] / std[c];
    const base = c * hw;
    for (let p = 0; p < hw; p++) out[offset + base + p] = src[base + p] * a + b;
  }
}

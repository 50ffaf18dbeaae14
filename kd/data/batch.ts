// Mini-batch assembly: gather uint8 images, normalise to float32 NCHW, optionally augment.
import type { Rng } from '../../engine/rng.ts';
import type { Dataset, Split } from './dataset.ts';
import { augmentInto, drawAugment, normaliseInto, type AugmentOptions } from './augment.ts';

/** Training augmentation (kd/data/augment.ts): random crop after zero padding, flip, small rotation/scale. */
export type Augment = AugmentOptions;
export const NO_AUGMENT: Augment = {};

const augmenting = (a: Augment): boolean => (a.pad ?? 0) > 0 || !!a.hflip || (a.rotate ?? 0) > 0 || (a.scale ?? 0) > 0;

/**
 * Normalised float NCHW batch from uint8 images, (v/255 - mean_c) / std_c, augmented with
 * parameters drawn from `rng` when `aug` asks for it.
 */
export function makeBatch(ds: Pick<Dataset, 'channels' | 'height' | 'width' | 'mean' | 'std'>, split: Pick<Split, 'images'>, idx: ArrayLike<number>, aug: Augment = NO_AUGMENT, rng?: Rng): Float32Array {
  const { channels: C, height: H, width: W } = ds;
  const px = C * H * W;
  const out = new Float32Array(idx.length * px);
  const on = rng && augmenting(aug);
  for (let b = 0; b < idx.length; b++) {
    const src = split.images.subarray(idx[b] * px, idx[b] * px + px);
    if (on) augmentInto(src, C, H, W, drawAugment(aug, rng), ds.mean, ds.std, out, b * px);
    else normaliseInto(src, C, H * W, ds.mean, ds.std, out, b * px);
  }
  return out;
}

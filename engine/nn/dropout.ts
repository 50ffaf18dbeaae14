// Dropout: a seeded mask from a hash of (key, index) in the kernel (shaders/dropout.wgsl);
// backward applies the same mask to the gradient, so nothing is stored for it.
import { defineOp, expectDtype } from '../op.ts';
import { Tensor, Rng } from '../tensor.ts';
import { dispatch, groupsFor } from '../program.ts';
import { reshape } from '../ops/shape.ts';
import { Module } from './module.ts';

interface DropoutParams {
  p: number;
  k0: number;
  k1: number;
}

function launch(x: Tensor, { p, k0, k1 }: DropoutParams): Tensor {
  const y = new Tensor(x.shape, 'f32');
  if (y.size > 0) dispatch({ name: 'dropout', shader: 'dropout' }, { n: y.size, p, scale: p < 1 ? 1 / (1 - p) : 0, k0, k1 }, [x.binding, y.binding], groupsFor(y.size));
  return y;
}

const dropoutOp = defineOp<DropoutParams>({
  name: 'dropout',
  shape([x]) {
    expectDtype('dropout', x, 'f32');
    return { shape: x.shape, dtype: 'f32' };
  },
  forward: ([x], params) => launch(x, params),
  backward: (g, { params }) => [launch(g, params)],
});

let defaultRng = new Rng(0x5eed);
/** Reseeds the generator used by dropout() calls that pass neither seed nor rng. */
export function dropoutSeed(seed: number): void {
  defaultRng = new Rng(seed);
}

const word = (rng: Rng): number => Math.floor(rng.uniform() * 4294967296) >>> 0;

export interface DropoutOptions {
  /** false: identity (evaluation) */
  training?: boolean;
  /** fixed mask key (same seed, same mask) */
  seed?: number;
  rng?: Rng;
}

/** Zeroes each element with probability p and scales the rest by 1 / (1 - p) (identity when not training or p = 0). */
export function dropout(x: Tensor, p: number, o: DropoutOptions = {}): Tensor {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`dropout: p must be in [0, 1], got ${p}`);
  if (o.training === false || p === 0) return reshape(x, x.shape);
  let k0: number;
  let k1: number;
  if (o.seed !== undefined) {
    const r = new Rng(o.seed);
    [k0, k1] = [word(r), word(r)];
  } else {
    const r = o.rng ?? defaultRng;
    [k0, k1] = [word(r), word(r)];
  }
  return dropoutOp([x], { p, k0, k1 });
}

let instances = 0;

/**
 * nn.Dropout: a fresh mask per training call from its own seeded generator; identity in eval
 * mode. The generator's position is not part of the state dict: a training loop that must be
 * resumable restarts it per step with `model.reseedDropout(seed)` (Module).
 */
export class Dropout extends Module {
  private rng: Rng;
  constructor(
    readonly p = 0.5,
    opts: { seed?: number } = {},
  ) {
    super();
    if (!(p >= 0 && p <= 1)) throw new RangeError(`Dropout: p must be in [0, 1], got ${p}`);
    this.rng = new Rng(opts.seed ?? 0x5eed + 7919 * ++instances);
  }
  protected override reseed(seed: number): void {
    this.rng = new Rng(seed);
  }
  override forward(x: Tensor): Tensor {
    return dropout(x, this.p, { training: this.training, rng: this.rng });
  }
}

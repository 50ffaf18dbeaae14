// torch.optim.AdamW (decoupled weight decay, bias correction, no amsgrad): shaders/adamw.wgsl.
import type { Tensor } from '../tensor.ts';
import { dispatch, groupsFor } from '../program.ts';
import { Optimizer, updateLanes, type Hyper, type Params } from './optimizer.ts';

export interface AdamWOptions {
  /** default 1e-3 */
  lr?: number;
  /** default [0.9, 0.999] */
  betas?: readonly [number, number];
  /** default 1e-8 */
  eps?: number;
  /** default 1e-2 (PyTorch's AdamW default) */
  weightDecay?: number;
}

export class AdamW extends Optimizer {
  betas: [number, number];
  eps: number;
  weightDecay: number;

  constructor(params: Params, opts: AdamWOptions = {}) {
    super(params, opts.lr ?? 1e-3, ['exp_avg', 'exp_avg_sq']);
    this.betas = [...(opts.betas ?? [0.9, 0.999])];
    this.eps = opts.eps ?? 1e-8;
    this.weightDecay = opts.weightDecay ?? 1e-2;
    this.validate();
  }

  private validate(): void {
    for (const b of this.betas) if (!(b >= 0 && b < 1)) throw new RangeError(`AdamW: invalid beta ${b} (must be in [0, 1))`);
    if (!(this.eps >= 0)) throw new RangeError(`AdamW: invalid eps ${this.eps}`);
    if (!(this.weightDecay >= 0)) throw new RangeError(`AdamW: invalid weightDecay ${this.weightDecay}`);
  }

  protected update(i: number, p: Tensor, g: Tensor): void {
    this.validate();
    const [b1, b2] = this.betas;
    const t = this.steps[i];
    const m = this.stateTensor(i, 'exp_avg');
    const v = this.stateTensor(i, 'exp_avg_sq');
    // bias corrections in float64 on the CPU
    const lr = this.lrOf(i);
    const stepSize = lr / (1 - b1 ** t);
    const invBc2Sqrt = 1 / Math.sqrt(1 - b2 ** t);
    const l = updateLanes(p.size);
    const u = { n: l.n, decay: 1 - lr * this.decayOf(i, this.weightDecay), b1, b2, eps: this.eps, stepSize, invBc2Sqrt, first: m.fresh };
    dispatch({ name: 'adamw', shader: 'adamw', defines: l.defines }, u, [g.binding, p.binding, m.t.binding, v.t.binding], groupsFor(l.n));
  }

  protected hyper(): Hyper {
    return { beta1: this.betas[0], beta2: this.betas[1], eps: this.eps, weightDecay: this.weightDecay };
  }

  protected setHyper(h: Hyper): void {
    if (typeof h.beta1 === 'number') this.betas[0] = h.beta1;
    if (typeof h.beta2 === 'number') this.betas[1] = h.beta2;
    if (typeof h.eps === 'number') this.eps = h.eps;
    if (typeof h.weightDecay === 'number') this.weightDecay = h.weightDecay;
  }
}

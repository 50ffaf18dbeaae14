// torch.optim.SGD (momentum, dampening, Nesterov, L2 weight decay): shaders/sgd.wgsl.
import { Tensor, keep } from '../tensor.ts';
import { dispatch, groupsFor } from '../program.ts';
import { Optimizer, updateLanes, type Hyper, type Params } from './optimizer.ts';

export interface SGDOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
}

export class SGD extends Optimizer {
  momentum: number;
  dampening: number;
  nesterov: boolean;
  weightDecay: number;
  private dummy: Tensor | null = null;

  constructor(params: Params, opts: SGDOptions) {
    super(params, opts.lr, ['momentum_buffer']);
    this.momentum = opts.momentum ?? 0;
    this.dampening = opts.dampening ?? 0;
    this.nesterov = opts.nesterov ?? false;
    this.weightDecay = opts.weightDecay ?? 0;
    this.validate();
  }

  private validate(): void {
    if (!(this.momentum >= 0)) throw new RangeError(`SGD: invalid momentum ${this.momentum}`);
    if (!(this.weightDecay >= 0)) throw new RangeError(`SGD: invalid weightDecay ${this.weightDecay}`);
    if (!Number.isFinite(this.dampening)) throw new RangeError(`SGD: invalid dampening ${this.dampening}`);
    if (this.nesterov && (this.momentum <= 0 || this.dampening !== 0)) throw new RangeError('SGD: Nesterov momentum requires momentum > 0 and dampening = 0');
  }

  protected update(i: number, p: Tensor, g: Tensor): void {
    this.validate();
    let buf: Tensor;
    let first = 0;
    if (this.momentum !== 0) {
      const s = this.stateTensor(i, 'momentum_buffer');
      buf = s.t;
      first = s.fresh ? 1 : 0;
    } else buf = this.dummy ??= keep(new Tensor([4], 'f32')); // one vec4: the smallest binding either kernel variant takes
    const l = updateLanes(p.size);
    const u = { n: l.n, lr: this.lrOf(i), momentum: this.momentum, dampening: this.dampening, wd: this.decayOf(i, this.weightDecay), nesterov: this.nesterov, first };
    dispatch({ name: 'sgd', shader: 'sgd', defines: l.defines }, u, [g.binding, p.binding, buf.binding], groupsFor(l.n));
  }

  protected hyper(): Hyper {
    return { momentum: this.momentum, dampening: this.dampening, nesterov: this.nesterov, weightDecay: this.weightDecay };
  }

  protected setHyper(h: Hyper): void {
    if (typeof h.momentum === 'number') this.momentum = h.momentum;
    if (typeof h.dampening === 'number') this.dampening = h.dampening;
    if (typeof h.nesterov === 'boolean') this.nesterov = h.nesterov;
    if (typeof h.weightDecay === 'number') this.weightDecay = h.weightDecay;
  }

  override dispose(): void {
    super.dispose();
    this.dummy?.dispose();
    this.dummy = null;
  }
}

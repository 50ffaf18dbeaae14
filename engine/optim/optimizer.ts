// Optimizer base: parameter list, per-parameter state tensors and step counts, zeroGrad and
// (resumable) state dicts. Subclasses launch one kernel per parameter tensor in update().
import { Tensor, ShapeError, keep, fmt } from '../tensor.ts';
import { copyInto } from '../ops/inplace.ts';

export type Hyper = Record<string, number | boolean>;

/** Test/bench hook: `vec4: false` runs the update kernels one element per lane everywhere. */
export const optimTuning: { vec4?: boolean } = {};

const SCALAR = { E: 'f32' } as const;
const VEC4 = { E: 'vec4f' } as const;

/**
 * The update kernels' element type and lane count for a tensor of n elements: vec4s where n is a
 * multiple of 4 (every binding starts at offset 0, so they are aligned), else scalars.
 */
export function updateLanes(n: number): { defines: typeof SCALAR | typeof VEC4; n: number } {
  return n % 4 === 0 && optimTuning.vec4 !== false ? { defines: VEC4, n: n / 4 } : { defines: SCALAR, n };
}

/**
 * A parameter group (as in torch.optim): its parameters and the settings that differ from the
 * optimizer's. `lrScale` multiplies the optimizer's `lr` (so an LR schedule moves every group
 * together); `weightDecay` replaces the optimizer's, e.g. 0 for batch-norm and bias parameters.
 */
export interface ParamGroup {
  params: Iterable<Tensor>;
  lrScale?: number;
  weightDecay?: number;
}

/** Plain parameters, or groups of them. */
export type Params = Iterable<Tensor> | readonly ParamGroup[];

const isGroupList = (p: Params): p is readonly ParamGroup[] =>
  Array.isArray(p) && p.length > 0 && p.every((g) => typeof g === 'object' && g !== null && !(g instanceof Tensor) && 'params' in g);

/** Everything needed to resume: hyper-parameters, per-parameter step counts, and state tensors keyed `${paramIndex}.${name}`. */
export interface OptimizerStateDict {
  hyper: Hyper;
  steps: number[];
  tensors: Map<string, Tensor>;
}

const sameShape = (a: readonly number[], b: readonly number[]): boolean => a.length === b.length && a.every((d, i) => d === b[i]);

export abstract class Optimizer {
  readonly params: readonly Tensor[];
  /** per parameter: its group's settings (lrScale 1 and no weight-decay override when ungrouped) */
  protected readonly groupOf: readonly { lrScale: number; weightDecay?: number }[];
  /** per parameter: state tensors by name (absent until the parameter's first step) */
  protected readonly state: Map<string, Tensor>[];
  /** per parameter: number of steps taken (parameters without a gradient do not count) */
  protected readonly steps: number[];
  private _lr = 0;

  constructor(
    params: Params,
    lr: number,
    /** names of the per-parameter state tensors, e.g. ['exp_avg', 'exp_avg_sq'] */
    protected readonly stateNames: readonly string[],
  ) {
    const name = this.constructor.name;
    const flat: Tensor[] = [];
    const groupOf: { lrScale: number; weightDecay?: number }[] = [];
    const groups = isGroupList(params) ? params : [{ params }];
    groups.forEach((g, gi) => {
      const lrScale = g.lrScale ?? 1;
      if (!(Number.isFinite(lrScale) && lrScale >= 0)) throw new RangeError(`${name}: group ${gi}: invalid lrScale ${g.lrScale}`);
      if (g.weightDecay !== undefined && !(g.weightDecay >= 0)) throw new RangeError(`${name}: group ${gi}: invalid weightDecay ${g.weightDecay}`);
      const settings = { lrScale, weightDecay: g.weightDecay };
      for (const p of g.params) {
        flat.push(p);
        groupOf.push(settings);
      }
    });
    this.params = flat;
    this.groupOf = groupOf;
    const seen = new Set<Tensor>();
    for (const p of this.params) {
      if (!(p instanceof Tensor)) throw new TypeError(`${this.constructor.name}: params must be tensors`);
      if (seen.has(p)) throw new Error(`${this.constructor.name}: parameter ${p.describe()} appears twice`);
      if (p.dtype !== 'f32') throw new TypeError(`${this.constructor.name}: parameter ${p.describe()} must be f32`);
      seen.add(p);
    }
    this.state = this.params.map(() => new Map());
    this.steps = this.params.map(() => 0);
    this.lr = lr;
  }

  get lr(): number {
    return this._lr;
  }
  /** Settable at any time (a schedule): it is a uniform, nothing recompiles. */
  set lr(v: number) {
    if (!(Number.isFinite(v) && v >= 0)) throw new RangeError(`${this.constructor.name}: invalid learning rate ${v}`);
    this._lr = v;
  }

  /** Updates every parameter that has a gradient, in place (one dispatch each). */
  step(): void {
    this.params.forEach((p, i) => {
      const g = p.grad;
      if (!g) return;
      if (p.disposed) throw new Error(`${this.constructor.name}.step: parameter ${i} was disposed`);
      if (g.size !== p.size || g.dtype !== 'f32') throw new ShapeError(`${this.constructor.name}.step: gradient ${g.describe()} does not match parameter ${p.describe()}`);
      this.steps[i]++;
      this.update(i, p, g);
    });
  }

  protected abstract update(i: number, p: Tensor, g: Tensor): void;

  /** Learning rate of parameter i (its group's scale times lr). */
  protected lrOf(i: number): number {
    return this.lr * this.groupOf[i].lrScale;
  }

  /** Weight decay of parameter i: its group's override, else the optimizer's. */
  protected decayOf(i: number, dflt: number): number {
    return this.groupOf[i].weightDecay ?? dflt;
  }
  protected abstract hyper(): Hyper;
  protected abstract setHyper(h: Hyper): void;

  /** The named state tensor of parameter i, allocated (uninitialised, kept out of tidy scopes) on first use. */
  protected stateTensor(i: number, name: string): { t: Tensor; fresh: boolean } {
    let t = this.state[i].get(name);
    if (t) return { t, fresh: false };
    t = keep(new Tensor(this.params[i].shape, 'f32'));
    t.name = `${this.params[i].name ?? `param ${i}`}.${name}`;
    this.state[i].set(name, t);
    return { t, fresh: true };
  }

  /** Drops every parameter's gradient (disposing it). */
  zeroGrad(): void {
    for (const p of this.params) {
      p.grad?.dispose();
      p.grad = null;
    }
  }

  /** Step count of parameter i. */
  stepCount(i = 0): number {
    return this.steps[i];
  }

  /** New handles on the live state tensors (the caller owns them), step counts and hyper-parameters. */
  stateDict(): OptimizerStateDict {
    const tensors = new Map<string, Tensor>();
    this.state.forEach((m, i) => m.forEach((t, name) => tensors.set(`${i}.${name}`, t.detach())));
    return { hyper: { lr: this.lr, ...this.hyper() }, steps: [...this.steps], tensors };
  }

  /** Restores a state dict from an optimizer over parameters of the same shapes and order (data is copied). */
  loadStateDict(sd: OptimizerStateDict): void {
    const problems: string[] = [];
    if (sd.steps.length !== this.params.length) problems.push(`${sd.steps.length} step counts for ${this.params.length} parameters`);
    const byParam = this.params.map(() => new Map<string, Tensor>());
    for (const [key, t] of sd.tensors) {
      const m = /^(\d+)\.(\w+)$/.exec(key);
      const i = m ? Number(m[1]) : -1;
      if (!m || i >= this.params.length || !this.stateNames.includes(m[2])) problems.push(`unexpected ${key}`);
      else if (t.disposed) problems.push(`${key} was disposed`);
      else if (!sameShape(t.shape, this.params[i].shape) || t.dtype !== 'f32') problems.push(`${key}: expected ${fmt(this.params[i].shape)} f32, got ${fmt(t.shape)} ${t.dtype}`);
      else byParam[i].set(m[2], t);
    }
    byParam.forEach((m, i) => {
      if (m.size > 0 && m.size < this.stateNames.length) problems.push(`parameter ${i}: missing ${this.stateNames.filter((n) => !m.has(n)).join(', ')}`);
    });
    if (problems.length) throw new ShapeError(`${this.constructor.name}.loadStateDict: ${problems.join('; ')}`);
    const { lr, ...rest } = sd.hyper;
    if (typeof lr === 'number') this.lr = lr;
    this.setHyper(rest);
    byParam.forEach((m, i) => {
      this.steps[i] = sd.steps[i];
      if (m.size === 0) {
        for (const t of this.state[i].values()) t.dispose();
        this.state[i].clear();
      } else for (const [name, src] of m) copyInto(this.stateTensor(i, name).t, src);
    });
  }

  /** Frees the state tensors (not the parameters). */
  dispose(): void {
    for (const m of this.state) {
      for (const t of m.values()) t.dispose();
      m.clear();
    }
  }
}

// The typed op registry. Declaring an op requires its shape rule, its forward and its
// backward (or the explicit marker 'not-differentiable'): leaving one out does not compile.
import { Node, isGradEnabled, type BackwardFn } from './autograd.ts';
import { Tensor, ShapeError, fmt, keep, type DType, type Shape } from './tensor.ts';

export interface Meta {
  shape: Shape;
  dtype: DType;
}

export interface ForwardCtx {
  /** true when a graph node will be recorded: save what backward needs, skip work it doesn't */
  readonly needsGrad: boolean;
  /** which inputs need a gradient */
  readonly inputNeedsGrad: readonly boolean[];
  /** keep tensors for backward (detached handles; the caller may dispose its own) */
  save(...t: Tensor[]): void;
}

export interface BackwardCtx<P> {
  readonly params: P;
  readonly saved: readonly Tensor[];
  readonly inputShapes: readonly Shape[];
  readonly inputNeedsGrad: readonly boolean[];
}

export interface OpSpec<P> {
  name: string;
  /** output shape and dtype; throws ShapeError naming the op and the shapes at fault */
  shape(inputs: readonly Meta[], params: P): Meta;
  /** records the GPU work and returns the output (which must match `shape`) */
  forward(inputs: readonly Tensor[], params: P, ctx: ForwardCtx): Tensor;
  /** gradient of each input given the output's gradient (null where none is needed) */
  backward: ((grad: Tensor, ctx: BackwardCtx<P>) => (Tensor | null)[]) | 'not-differentiable';
}

export type Op<P> = ((inputs: readonly Tensor[], params: P) => Tensor) & { spec: OpSpec<P> };

export const registry = new Map<string, OpSpec<never>>();

export function defineOp<P>(spec: OpSpec<P>): Op<P> {
  if (registry.has(spec.name)) throw new Error(`op ${spec.name} is defined twice`);
  registry.set(spec.name, spec as unknown as OpSpec<never>);
  const call = (inputs: readonly Tensor[], params: P): Tensor => {
    for (const t of inputs) if (t.disposed) throw new Error(`${spec.name}: input ${t.describe()} was used after it was disposed`);
    const meta = spec.shape(inputs, params);
    const inputNeedsGrad = inputs.map((t) => t.node !== null && isGradEnabled() && spec.backward !== 'not-differentiable');
    const needsGrad = inputNeedsGrad.some(Boolean);
    const saved: Tensor[] = [];
    const ctx: ForwardCtx = { needsGrad, inputNeedsGrad, save: (...ts) => ts.forEach((t) => saved.push(keep(t.detach()))) };
    const out = spec.forward(inputs, params, ctx);
    if (out.dtype !== meta.dtype || out.shape.length !== meta.shape.length || out.shape.some((d, i) => d !== meta.shape[i]))
      throw new Error(`${spec.name}: forward produced ${out.describe()}, its shape rule says ${fmt(meta.shape)} ${meta.dtype}`);
    if (needsGrad) {
      const bw = spec.backward as Exclude<OpSpec<P>['backward'], string>;
      const backward: BackwardFn = (g, node) => bw(g, { params, saved: node.saved, inputShapes: node.ctx.inputShapes, inputNeedsGrad });
      const parents = inputs.map((t, i) => (inputNeedsGrad[i] ? t.node : null));
      out.setNode(new Node(spec.name, parents, saved, backward, { params, inputShapes: inputs.map((t) => t.shape), inputDtypes: inputs.map((t) => t.dtype) }));
    } else for (const t of saved) t.dispose();
    return out;
  };
  return Object.assign(call, { spec });
}

// ---- shape-rule helpers shared by ops ------------------------------------------------------

export function expectDtype(op: string, m: Meta, dtype: DType, what = 'input'): void {
  if (m.dtype !== dtype) throw new TypeError(`${op}: ${what} must be ${dtype}, got ${fmt(m.shape)} ${m.dtype}`);
}

export function expectRank(op: string, m: Meta, rank: number, what = 'input'): void {
  if (m.shape.length !== rank) throw new ShapeError(`${op}: ${what} must have rank ${rank}, got ${fmt(m.shape)}`);
}

/** Normalises a possibly negative axis. */
export function axisOf(op: string, axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) throw new ShapeError(`${op}: axis ${axis} is out of range for rank ${rank}`);
  return a;
}

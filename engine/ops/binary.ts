// Elementwise binary ops with NumPy broadcasting (shaders/binary.wgsl).
import { defineOp, expectDtype, type Op } from '../op.ts';
import { Tensor, ShapeError, fmt, type Shape } from '../tensor.ts';
import { dispatch, groupsFor } from '../program.ts';
import { sumTo } from './sum-to.ts';
import { neg, mulScalar, reluGradRaw } from './unary.ts';

const MAX_RANK = 8;

export function broadcastShapes(op: string, a: Shape, b: Shape): number[] {
  const r = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let i = 0; i < r; i++) {
    const da = a[a.length - r + i] ?? 1;
    const db = b[b.length - r + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) throw new ShapeError(`${op}: shapes ${fmt(a)} and ${fmt(b)} do not broadcast`);
    out.push(da === 1 ? db : da);
  }
  if (r > MAX_RANK) throw new ShapeError(`${op}: rank ${r} exceeds ${MAX_RANK}`);
  return out;
}

/** Strides of `s` read as broadcast to `out` (0 where broadcast). */
function broadcastStrides(s: Shape, out: Shape): number[] {
  const st = new Array<number>(out.length).fill(0);
  let acc = 1;
  for (let i = s.length - 1; i >= 0; i--) {
    const o = out.length - s.length + i;
    st[o] = s[i] === 1 ? 0 : acc;
    acc *= s[i];
  }
  return st;
}


function launchBinary(name: string, expr: string, a: Tensor, b: Tensor): Tensor {
  const shape = broadcastShapes(name, a.shape, b.shape);
  const out = new Tensor(shape, 'f32');
  const same = a.size === out.size && b.size === out.size ? 1 : 0;
  if (same && out.size % 4 === 0) {
    dispatch({ name, shader: 'binary_vec4', defines: { EXPR: expr } }, { n4: out.size / 4 }, [a.binding, b.binding, out.binding], groupsFor(out.size / 4));
    return out;
  }
  const u = { n: out.size, rank: shape.length, shape, sa: broadcastStrides(a.shape, shape), sb: broadcastStrides(b.shape, shape) };
  dispatch({ name, shader: 'binary', defines: { EXPR: expr, SAME: same } }, u, [a.binding, b.binding, out.binding], groupsFor(out.size));
  return out;
}

/**
 * Gradients of both inputs; `need` says which are wanted (skip the launches of the others). Only
 * the tensors named in the op's `saves` are kept for it (the others are passed as null): add and
 * sub keep nothing, so a residual sum's operands and result are freed as soon as the caller is done.
 */
type GradRule = (g: Tensor, a: Tensor, b: Tensor, y: Tensor, need: readonly boolean[]) => [Tensor | null, Tensor | null];
type Saved = readonly ('a' | 'b' | 'y')[];

function makeBinary(name: string, expr: string, grad: GradRule | 'not-differentiable', saves: Saved = ['a', 'b', 'y']): Op<Record<string, never>> {
  return defineOp<Record<string, never>>({
    name,
    shape([a, b]) {
      expectDtype(name, a, 'f32', 'first input');
      expectDtype(name, b, 'f32', 'second input');
      return { shape: broadcastShapes(name, a.shape, b.shape), dtype: 'f32' };
    },
    forward([a, b], _p, ctx) {
      const y = launchBinary(name, expr, a, b);
      if (ctx.needsGrad) ctx.save(...saves.map((k) => ({ a, b, y })[k]));
      return y;
    },
    backward:
      grad === 'not-differentiable'
        ? grad
        : (g, { saved, inputShapes, inputNeedsGrad }) => {
            const [a, b, y] = (['a', 'b', 'y'] as const).map((k) => saved[saves.indexOf(k)] ?? (null as unknown as Tensor));
            const [ga, gb] = grad(g, a, b, y, inputNeedsGrad);
            return [inputNeedsGrad[0] && ga ? sumTo(ga, inputShapes[0]) : null, inputNeedsGrad[1] && gb ? sumTo(gb, inputShapes[1]) : null];
          },
  });
}

const rawMul = (x: Tensor, y: Tensor): Tensor => launchBinary('mul', 'a * b', x, y);
const rawDiv = (x: Tensor, y: Tensor): Tensor => launchBinary('div', 'a / b', x, y);
const rawSel = (name: string, expr: string) => (x: Tensor, y: Tensor) => launchBinary(name, expr, x, y);

/**
 * x^e as a WGSL expression, defined like torch.pow: negative bases work with integer exponents
 * (WGSL's pow is undefined for x < 0: lavapipe returns NaN) and x^0 = 1 (pow(0, 0) is undefined too).
 */
const powExpr = (x: string, e: string): string =>
  `select(select(select(1.0, -1.0, fract(${e} * 0.5) != 0.0) * pow(abs(${x}), ${e}), pow(${x}, ${e}), ${x} >= 0.0 || fract(${e}) != 0.0), 1.0, ${e} == 0.0)`;

const ops = {
  add: makeBinary('add', 'a + b', (g) => [g, g], []),
  sub: makeBinary('sub', 'a - b', (g, _a, _b, _y, need) => [g, need[1] ? neg(g) : null], []),
  mul: makeBinary('mul', 'a * b', (g, a, b, _y, need) => [need[0] ? rawMul(g, b) : null, need[1] ? rawMul(g, a) : null], ['a', 'b']),
  div: makeBinary('div', 'a / b', (g, _a, b, y, need) => [need[0] ? rawDiv(g, b) : null, need[1] ? neg(rawDiv(rawMul(g, y), b)) : null], ['b', 'y']),
  // d/da a^b = b a^(b-1) (recomputed: b y / a is unstable at a = 0); d/db a^b = a^b ln a, taken
  // as 0 where a^b = 0 (like torch, instead of 0 * -inf)
  pow: makeBinary('pow', powExpr('a', 'b'), (g, a, b, y, need) => [
    need[0] ? rawMul(g, launchBinary('pow_da', `b * ${powExpr('a', '(b - 1.0)')}`, a, b)) : null,
    need[1] ? rawMul(g, launchBinary('pow_db', 'select(a * log(b), 0.0, a == 0.0)', y, a)) : null,
  ]),
  maximum: makeBinary(
    'maximum',
    'max(a, b)',
    (g, a, b, _y, need) => [need[0] ? rawMul(g, rawSel('ge', 'select(0.0, 1.0, a >= b)')(a, b)) : null, need[1] ? rawMul(g, rawSel('lt', 'select(0.0, 1.0, a < b)')(a, b)) : null],
    ['a', 'b'],
  ),
  minimum: makeBinary(
    'minimum',
    'min(a, b)',
    (g, a, b, _y, need) => [need[0] ? rawMul(g, rawSel('le', 'select(0.0, 1.0, a <= b)')(a, b)) : null, need[1] ? rawMul(g, rawSel('gt', 'select(0.0, 1.0, a > b)')(a, b)) : null],
    ['a', 'b'],
  ),
  // relu(a + b) in one pass (ResNet's residual tail): the gradient g * (y > 0) goes to both inputs
  addRelu: makeBinary(
    'add_relu',
    'max(a + b, 0.0)',
    (g, _a, _b, y) => {
      const gy = reluGradRaw(g, y);
      return [gy, gy];
    },
    ['y'],
  ),
  eq: makeBinary('eq', 'select(0.0, 1.0, a == b)', 'not-differentiable'),
  ne: makeBinary('ne', 'select(0.0, 1.0, a != b)', 'not-differentiable'),
  lt: makeBinary('lt', 'select(0.0, 1.0, a < b)', 'not-differentiable'),
  le: makeBinary('le', 'select(0.0, 1.0, a <= b)', 'not-differentiable'),
  gt: makeBinary('gt', 'select(0.0, 1.0, a > b)', 'not-differentiable'),
  ge: makeBinary('ge', 'select(0.0, 1.0, a >= b)', 'not-differentiable'),
};

const E = {};
export const add = (a: Tensor, b: Tensor): Tensor => ops.add([a, b], E);
export const sub = (a: Tensor, b: Tensor): Tensor => ops.sub([a, b], E);
/** relu(a + b) as one kernel (a residual block's tail): the sum itself is never stored. */
export const addRelu = (a: Tensor, b: Tensor): Tensor => ops.addRelu([a, b], E);
export const mul = (a: Tensor, b: Tensor): Tensor => ops.mul([a, b], E);
export const div = (a: Tensor, b: Tensor): Tensor => ops.div([a, b], E);
/** a ** b elementwise, like torch.pow: a negative base needs an integer exponent (else NaN); the gradient w.r.t. b needs a > 0. */
export const pow = (a: Tensor, b: Tensor): Tensor => ops.pow([a, b], E);
export const maximum = (a: Tensor, b: Tensor): Tensor => ops.maximum([a, b], E);
export const minimum = (a: Tensor, b: Tensor): Tensor => ops.minimum([a, b], E);
/** Comparisons return float masks (1 where true, 0 elsewhere); not differentiable. */
export const eq = (a: Tensor, b: Tensor): Tensor => ops.eq([a, b], E);
export const ne = (a: Tensor, b: Tensor): Tensor => ops.ne([a, b], E);
export const lt = (a: Tensor, b: Tensor): Tensor => ops.lt([a, b], E);
export const le = (a: Tensor, b: Tensor): Tensor => ops.le([a, b], E);
export const gt = (a: Tensor, b: Tensor): Tensor => ops.gt([a, b], E);
export const ge = (a: Tensor, b: Tensor): Tensor => ops.ge([a, b], E);
export { mulScalar };

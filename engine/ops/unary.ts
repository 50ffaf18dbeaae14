// Elementwise unary ops: one shader (shaders/unary.wgsl) specialised by an expression.
import { defineOp, expectDtype, type Op } from '../op.ts';
import { Tensor } from '../tensor.ts';
import { dispatch, groupsFor } from '../program.ts';

/**
 * f(x; a, b) and f' as WGSL expressions, and what f' reads: the input x, the output y = f(x), or
 * nothing. The forward saves only that tensor and the gradient kernel reads only it, as `s`
 * (relu's x, the sum of a residual add, is then freed at once and its backward reads 2 streams, not 3).
 */
const UNARY = {
  neg: ['-x', '-1.0', null],
  exp: ['exp(x)', 's', 'y'],
  log: ['log(x)', '1.0 / s', 'x'],
  sqrt: ['sqrt(x)', '0.5 / s', 'y'],
  // y > 0 exactly where x > 0 (and neither for NaN)
  relu: ['max(x, 0.0)', 'select(0.0, 1.0, s > 0.0)', 'y'],
  // 0 < y < 6 exactly where 0 < x < 6
  relu6: ['clamp(x, 0.0, 6.0)', 'select(0.0, 1.0, s > 0.0 && s < 6.0)', 'y'],
  sigmoid: ['1.0 / (1.0 + exp(-x))', 's * (1.0 - s)', 'y'],
  tanh: ['tanh(clamp(x, -20.0, 20.0))', '1.0 - s * s', 'y'],
  abs: ['abs(x)', 'sign(s)', 'x'],
  // x, not y: y == a both below a (gradient 0) and at a (gradient 1)
  clamp: ['clamp(x, a, b)', 'select(0.0, 1.0, s >= a && s <= b)', 'x'],
  /** a * x + b */
  affine: ['a * x + b', 'a', null],
  /** x ^ a for an integer a (negative x allowed): sign(x)^a |x|^a; a = 0 and 1 are routed elsewhere (pow(0, 0) is undefined in WGSL) */
  powInt: ['select(1.0, -1.0, x < 0.0 && (i32(a) & 1) == 1) * pow(abs(x), a)', 'a * select(1.0, -1.0, s < 0.0 && (i32(a) & 1) == 0) * pow(abs(s), a - 1.0)', 'x'],
  /** x ^ a for a non-integer a (x < 0 gives NaN, like torch) */
  powReal: ['pow(x, a)', 'a * pow(s, a - 1.0)', 'x'],
} as const;
export type UnaryName = keyof typeof UNARY;

interface UnaryParams {
  a: number;
  b: number;
}

/** f applied to `v` (forward) or f' to the saved `v` (grad), four components at a time when the size allows. */
function apply(shader: string, vec4: boolean): string {
  const one = shader === 'unary' ? (c: string) => `f(v${c}, p.a, p.b)` : (c: string) => `df(v${c}, p.a, p.b)`;
  return vec4 ? `vec4f(${['.x', '.y', '.z', '.w'].map(one).join(', ')})` : one('');
}

/** y = EXPR(x) elementwise outside autograd (copies, fills from x). */
export function launchUnary(name: string, expr: string, x: Tensor, out: Tensor, p: UnaryParams = { a: 0, b: 0 }): Tensor {
  return launch(name, 'unary', { EXPR: expr }, p, [x], out);
}

function launch(name: string, shader: string, define: Record<string, string>, p: UnaryParams, bindings: Tensor[], out: Tensor): Tensor {
  const vec4 = out.size % 4 === 0;
  const n = vec4 ? out.size / 4 : out.size;
  const defines = { ...define, E: vec4 ? 'vec4f' : 'f32', APPLY: apply(shader, vec4) };
  dispatch({ name, shader, defines }, { n, a: p.a, b: p.b }, [...bindings, out].map((t) => t.binding), groupsFor(n));
  return out;
}

/** g * relu'(y) for y = relu(something), outside autograd (fused ops whose output is a ReLU's). */
export function reluGradRaw(g: Tensor, y: Tensor): Tensor {
  return launch('relu_grad', 'unary_grad', { DEXPR: UNARY.relu[1] }, { a: 0, b: 0 }, [g, y], new Tensor(g.shape, 'f32'));
}

function makeUnary(name: UnaryName): Op<UnaryParams> {
  const [expr, dexpr, reads] = UNARY[name];
  return defineOp<UnaryParams>({
    name,
    shape([x]) {
      expectDtype(name, x, 'f32');
      return { shape: x.shape, dtype: 'f32' };
    },
    forward([x], p, ctx) {
      const y = launch(name, 'unary', { EXPR: expr }, p, [x], new Tensor(x.shape, 'f32'));
      if (ctx.needsGrad && reads) ctx.save(reads === 'x' ? x : y);
      return y;
    },
    backward(g, { saved: [s], params }) {
      // f' of a constant (neg, affine) reads nothing: g stands in for the unused binding
      return [launch(`${name}_grad`, 'unary_grad', { DEXPR: dexpr }, params, [g, s ?? g], new Tensor(g.shape, 'f32'))];
    },
  });
}

const ops = Object.fromEntries(Object.keys(UNARY).map((k) => [k, makeUnary(k as UnaryName)])) as Record<UnaryName, Op<UnaryParams>>;
const none = { a: 0, b: 0 };

export const neg = (x: Tensor): Tensor => ops.neg([x], none);
export const exp = (x: Tensor): Tensor => ops.exp([x], none);
export const log = (x: Tensor): Tensor => ops.log([x], none);
export const sqrt = (x: Tensor): Tensor => ops.sqrt([x], none);
export const relu = (x: Tensor): Tensor => ops.relu([x], none);
export const relu6 = (x: Tensor): Tensor => ops.relu6([x], none);
export const sigmoid = (x: Tensor): Tensor => ops.sigmoid([x], none);
export const tanh = (x: Tensor): Tensor => ops.tanh([x], none);
export const abs = (x: Tensor): Tensor => ops.abs([x], none);
export const clamp = (x: Tensor, lo: number, hi: number): Tensor => {
  if (!(lo <= hi)) throw new RangeError(`clamp: lo ${lo} must not exceed hi ${hi}`);
  return ops.clamp([x], { a: lo, b: hi });
};
/** a * x + b with scalars a and b. */
export const affine = (x: Tensor, a: number, b = 0): Tensor => ops.affine([x], { a, b });
export const mulScalar = (x: Tensor, a: number): Tensor => ops.affine([x], { a, b: 0 });
export const addScalar = (x: Tensor, b: number): Tensor => ops.affine([x], { a: 1, b });
/** x ** a for a scalar a. Integer exponents accept negative x; a non-integer one gives NaN there (as torch). */
export const powScalar = (x: Tensor, a: number): Tensor => {
  if (a === 0) return ops.affine([x], { a: 0, b: 1 }); // x^0 = 1 (also at 0), gradient 0
  if (a === 1) return ops.affine([x], { a: 1, b: 0 });
  return Number.isInteger(a) ? ops.powInt([x], { a, b: 0 }) : ops.powReal([x], { a, b: 0 });
};

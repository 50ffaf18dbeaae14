// 2-D pooling (NCHW): max (argmax recorded for backward), average, adaptive/global average.
// Forward: one invocation per output (shaders/pool2d.wgsl, adaptive_avgpool2d.wgsl).
// Backward: max/avg scatter into a zeroed dx in ceil(k/s)^2 passes of outputs with disjoint
// windows (pool2d_scatter.wgsl): race-free without atomics, deterministic. Global average
// pooling's backward is a broadcast (global_avgpool2d_grad.wgsl); other adaptive sizes gather
// per input element (adaptive_avgpool2d.wgsl with GRAD=1).
import { defineOp, expectDtype, expectRank, type Meta } from '../op.ts';
import { Tensor, ShapeError, fmt, zeros } from '../tensor.ts';
import { dispatch, groupsFor } from '../program.ts';

export type Size2 = number | readonly [number, number];

export interface Pool2dOptions {
  kernel: Size2;
  /** defaults to kernel */
  stride?: Size2;
  /** symmetric zero (avg) / -inf (max) padding, at most half the kernel; default 0 */
  padding?: Size2;
}

export interface AvgPool2dOptions extends Pool2dOptions {
  /** PyTorch's count_include_pad (default true) */
  countIncludePad?: boolean;
}

interface Geom {
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  ph: number;
  pw: number;
  includePad: boolean;
}

const pair = (v: Size2): [number, number] => (typeof v === 'number' ? [v, v] : [v[0], v[1]]);

function geometry(op: string, o: AvgPool2dOptions): Geom {
  const [kh, kw] = pair(o.kernel);
  const [sh, sw] = pair(o.stride ?? o.kernel);
  const [ph, pw] = pair(o.padding ?? 0);
  const all = { kernel: [kh, kw], stride: [sh, sw], padding: [ph, pw] };
  for (const [what, v] of Object.entries(all)) {
    const min = what === 'padding' ? 0 : 1;
    if (v.some((d) => !Number.isInteger(d) || d < min)) throw new RangeError(`${op}: ${what} ${fmt(v)} must be integers >= ${min}`);
  }
  if (2 * ph > kh || 2 * pw > kw) throw new RangeError(`${op}: padding ${fmt([ph, pw])} should be at most half of kernel size ${fmt([kh, kw])}`);
  return { kh, kw, sh, sw, ph, pw, includePad: o.countIncludePad ?? true };
}

function outSize(op: string, x: Meta, g: Geom): [number, number] {
  expectDtype(op, x, 'f32');
  expectRank(op, x, 4, 'input (NCHW)');
  const [, , H, W] = x.shape;
  if (H + 2 * g.ph < g.kh || W + 2 * g.pw < g.kw)
    throw new ShapeError(`${op}: kernel ${fmt([g.kh, g.kw])} is larger than the padded input ${fmt([H + 2 * g.ph, W + 2 * g.pw])} (input ${fmt(x.shape)}, padding ${fmt([g.ph, g.pw])})`);
  return [Math.floor((H + 2 * g.ph - g.kh) / g.sh) + 1, Math.floor((W + 2 * g.pw - g.kw) / g.sw) + 1];
}

/** Window geometry as compile-time constants (op hyper-parameters, never batch shapes). */
function geomDefines(g: Geom): Record<string, number> {
  return { KH: g.kh, KW: g.kw, SH: g.sh, SW: g.sw, PH: g.ph, PW: g.pw, INCLUDE_PAD: g.includePad ? 1 : 0 };
}


function makePool(kind: 'max' | 'avg') {
  const op = `${kind}Pool2d`;
  const max = kind === 'max' ? 1 : 0;
  return defineOp<Geom>({
    name: op,
    shape([x], g) {
      const [oH, oW] = outSize(op, x, g);
      return { shape: [x.shape[0], x.shape[1], oH, oW], dtype: 'f32' };
    },
    forward([x], g, ctx) {
      const [oH, oW] = outSize(op, x, g);
      const y = new Tensor([x.shape[0], x.shape[1], oH, oW], 'f32');
      const withArg = kind === 'max' && ctx.needsGrad;
      const arg = withArg ? new Tensor(y.shape, 'i32') : null;
      const defines = {
        ...geomDefines(g),
        MAX: max,
        ARG_DECL: arg ? '@group(0) @binding(3) var<storage, read_write> arg: array<i32>;' : '',
        ARG_STORE: arg ? 'arg[o] = bi;' : '',
      };
      dispatch(
        { name: `${op}${arg ? '_arg' : ''}`, shader: 'pool2d', defines },
        { n: y.size, H: x.shape[2], W: x.shape[3], oH, oW, ninf: -Infinity },
        [x.binding, y.binding, ...(arg ? [arg.binding] : [])],
        groupsFor(y.size),
      );
      if (arg) {
        ctx.save(arg);
        arg.dispose();
      }
      return y;
    },
    backward(gy, { saved, params: g, inputShapes: [xs] }) {
      const dx = zeros(xs);
      const [N, C, oH, oW] = gy.shape;
      const arg = kind === 'max' ? saved[0] : gy; // gy stands in for the argmax of avg (never read)
      const QH = Math.ceil(g.kh / g.sh);
      const QW = Math.ceil(g.kw / g.sw);
      const defines = { ...geomDefines(g), MAX: max, QH, QW };
      for (let a = 0; a < Math.min(QH, oH); a++)
        for (let b = 0; b < Math.min(QW, oW); b++) {
          const cntH = Math.ceil((oH - a) / QH);
          const cntW = Math.ceil((oW - b) / QW);
          const n = N * C * cntH * cntW;
          dispatch({ name: `${op}_grad`, shader: 'pool2d_scatter', defines }, { n, H: xs[2], W: xs[3], oH, oW, a, b, cntH, cntW }, [gy.binding, arg.binding, dx.binding], groupsFor(n));
        }
      return [dx];
    },
  });
}

const maxOp = makePool('max');
const avgOp = makePool('avg');

/** Max pooling over x [N, C, H, W] (PyTorch semantics: -inf padding, first maximum wins, floor output size). */
export function maxPool2d(x: Tensor, o: Pool2dOptions): Tensor {
  return maxOp([x], geometry('maxPool2d', o));
}

/** Average pooling over x [N, C, H, W] with zero padding; countIncludePad defaults to true. */
export function avgPool2d(x: Tensor, o: AvgPool2dOptions): Tensor {
  return avgOp([x], geometry('avgPool2d', o));
}

const adaptiveOp = defineOp<{ oH: number; oW: number }>({
  name: 'adaptiveAvgPool2d',
  shape([x], { oH, oW }) {
    expectDtype('adaptiveAvgPool2d', x, 'f32');
    expectRank('adaptiveAvgPool2d', x, 4, 'input (NCHW)');
    if (x.shape[2] === 0 || x.shape[3] === 0) throw new ShapeError(`adaptiveAvgPool2d: input ${fmt(x.shape)} has an empty plane`);
    return { shape: [x.shape[0], x.shape[1], oH, oW], dtype: 'f32' };
  },
  forward([x], { oH, oW }) {
    const y = new Tensor([x.shape[0], x.shape[1], oH, oW], 'f32');
    dispatch({ name: 'adaptiveAvgPool2d', shader: 'adaptive_avgpool2d', defines: { GRAD: 0 } }, { n: y.size, H: x.shape[2], W: x.shape[3], oH, oW }, [x.binding, y.binding], groupsFor(y.size));
    return y;
  },
  backward(gy, { params: { oH, oW }, inputShapes: [xs] }) {
    const dx = new Tensor(xs, 'f32');
    if (oH === 1 && oW === 1) {
      // global pooling: a broadcast, vec4-wide when planes split into whole vec4s
      const HW = xs[2] * xs[3];
      const v = HW % 4 === 0 ? 4 : 1;
      const n = dx.size / v;
      const PER = 4;
      const threads = Math.ceil(n / PER);
      dispatch(
        { name: 'globalAvgPool2d_grad', shader: 'global_avgpool2d_grad', defines: { V: v === 4 ? 'vec4f' : 'f32', PER } },
        { n, hw: HW / v, threads, scale: 1 / HW },
        [gy.binding, dx.binding],
        groupsFor(threads),
      );
      return [dx];
    }
    dispatch({ name: 'adaptiveAvgPool2d_grad', shader: 'adaptive_avgpool2d', defines: { GRAD: 1 } }, { n: dx.size, H: xs[2], W: xs[3], oH, oW }, [gy.binding, dx.binding], groupsFor(dx.size));
    return [dx];
  },
});

/** Adaptive average pooling to `size` ([oH, oW] or one number for both), PyTorch's window formula. */
export function adaptiveAvgPool2d(x: Tensor, size: Size2): Tensor {
  const [oH, oW] = pair(size);
  if (![oH, oW].every((d) => Number.isInteger(d) && d >= 1)) throw new RangeError(`adaptiveAvgPool2d: output size ${fmt([oH, oW])} must be positive integers`);
  return adaptiveOp([x], { oH, oW });
}

/** Global average pooling: [N, C, H, W] -> [N, C, 1, 1]. */
export function globalAvgPool2d(x: Tensor): Tensor {
  return adaptiveOp([x], { oH: 1, oW: 1 });
}

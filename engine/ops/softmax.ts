// softmax / logSoftmax along any axis (shaders/softmax.wgsl, softmax_grad.wgsl).
// The input is viewed as [outer, len, inner] around the axis: no permute copies.
import { defineOp, axisOf, expectDtype } from '../op.ts';
import { Tensor, ShapeError, fmt, numel } from '../tensor.ts';
import { dispatch, groupsFor } from '../program.ts';

/** The [outer, len, inner] view around `axis` (the kernels' uniforms; one lane per outer x inner). */
function lanes(s: readonly number[], axis: number): { outer: number; len: number; inner: number } {
  return { outer: numel(s.slice(0, axis)), len: s[axis], inner: numel(s.slice(axis + 1)) };
}

function makeSoftmax(name: 'softmax' | 'logSoftmax', log: 0 | 1) {
  return defineOp<{ axis: number }>({
    name,
    shape([x], { axis }) {
      expectDtype(name, x, 'f32');
      if (x.shape[axis] === 0) throw new ShapeError(`${name}: axis ${axis} of ${fmt(x.shape)} is empty`);
      return { shape: x.shape, dtype: 'f32' };
    },
    forward([x], { axis }, ctx) {
      const y = new Tensor(x.shape, 'f32');
      const u = lanes(x.shape, axis);
      if (y.size > 0) dispatch({ name, shader: 'softmax', defines: { LOG: log } }, u, [x.binding, y.binding], groupsFor(u.outer * u.inner, 64));
      if (ctx.needsGrad) ctx.save(y);
      return y;
    },
    backward(g, { saved: [y], params: { axis } }) {
      const dx = new Tensor(y.shape, 'f32');
      const u = lanes(y.shape, axis);
      if (dx.size > 0) dispatch({ name: `${name}_grad`, shader: 'softmax_grad', defines: { LOG: log } }, u, [g.binding, y.binding, dx.binding], groupsFor(u.outer * u.inner, 64));
      return [dx];
    },
  });
}

const softmaxOp = makeSoftmax('softmax', 0);
const logSoftmaxOp = makeSoftmax('logSoftmax', 1);

/** exp(x) / sum(exp(x)) along `axis` (default: the last), computed max-subtracted. */
export function softmax(x: Tensor, axis = -1): Tensor {
  return softmaxOp([x], { axis: axisOf('softmax', axis, x.shape.length) });
}

/** x - logsumexp(x) along `axis` (default: the last), computed max-subtracted. */
export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return logSoftmaxOp([x], { axis: axisOf('logSoftmax', axis, x.shape.length) });
}

// Running a model for input gradients only (adversarial attacks, Grad-CAM): eval mode and its
// parameters out of the autograd graph, both restored afterwards whatever happens.
import { isGradEnabled } from '../autograd.ts';
import type { AnyModule } from './module.ts';

/**
 * Runs fn with the model in eval mode and its parameters out of the autograd graph; restores
 * every module's training flag and every parameter's requires-grad flag afterwards. Parameter
 * gradients (.grad) are never touched (checked). `what` names the caller in errors.
 */
export async function withFrozenModel<T>(model: AnyModule, what: string, fn: () => Promise<T>): Promise<T> {
  if (!isGradEnabled()) throw new Error(`${what} needs autograd (gradients w.r.t. the input): do not call it inside noGrad()`);
  const modes = model.namedModules().map(([, m]) => [m, m.training] as const);
  const params = model.parameters();
  const req = params.map((p) => p.requiresGrad);
  const grads = params.map((p) => p.grad);
  model.eval();
  for (const p of params) if (p.requiresGrad) p.requireGrad(false);
  try {
    return await fn();
  } finally {
    for (const [m, t] of modes) m.training = t;
    params.forEach((p, i) => {
      if (req[i] && !p.disposed) p.requireGrad(true);
      if (p.grad !== grads[i]) throw new Error(`${what}: parameter ${p.describe()} gradient changed (internal error)`);
    });
  }
}

// Learning-rate schedules as pure functions of the (0-based) step: `opt.lr = sched(step)` before `opt.step()`.
export type Schedule = (step: number) => number;

/** base * gamma^floor(step / stepSize) (torch StepLR). */
export function stepLR(base: number, stepSize: number, gamma = 0.1): Schedule {
  if (!(Number.isInteger(stepSize) && stepSize > 0)) throw new RangeError(`stepLR: stepSize must be a positive integer, got ${stepSize}`);
  return (step) => base * gamma ** Math.floor(step / stepSize);
}

/** base * gamma^(number of milestones <= step) (torch MultiStepLR). */
export function multiStepLR(base: number, milestones: readonly number[], gamma = 0.1): Schedule {
  return (step) => base * gamma ** milestones.filter((m) => m <= step).length;
}

/**
 * Linear warmup then cosine decay: step < warmupSteps gives base * (step + 1) / warmupSteps (the
 * first step already moves); afterwards minLr + (base - minLr) * (1 + cos(pi * t)) / 2 with
 * t = (step - warmupSteps) / (totalSteps - warmupSteps), clamped to 1 (minLr from totalSteps on).
 */
export function cosineWithWarmup(base: number, warmupSteps: number, totalSteps: number, minLr = 0): Schedule {
  if (!(Number.isInteger(warmupSteps) && warmupSteps >= 0 && Number.isInteger(totalSteps) && totalSteps >= warmupSteps))
    throw new RangeError(`cosineWithWarmup: need integers 0 <= warmupSteps (${warmupSteps}) <= totalSteps (${totalSteps})`);
  return (step) => {
    if (step < warmupSteps) return (base * (step + 1)) / warmupSteps;
    const t = Math.min(1, (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps));
    return minLr + ((base - minLr) * (1 + Math.cos(Math.PI * t))) / 2;
  };
}

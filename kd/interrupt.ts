// How a training run stops early: a non-finite loss (NanLossError), an interrupt request (Ctrl-C
// in the command line, or a test hook) that checkpoints after the current step (InterruptedError).
import type * as rk from '../engine/index.ts';

export class NanLossError extends Error {
  override name = 'NanLossError';
}
export class InterruptedError extends Error {
  override name = 'InterruptedError';
}

let interruptRequested = false;
/** Asks the running loop to checkpoint and stop after the current step (Ctrl-C does this). */
export function requestInterrupt(): void {
  interruptRequested = true;
}
export function clearInterrupt(): void {
  interruptRequested = false;
}
export const isInterruptRequested = (): boolean => interruptRequested;
let trainingLoops = 0;
/** True while an epoch loop runs (a Ctrl-C then waits for the step's checkpoint; kd/supervise.ts). */
export const isTraining = (): boolean => trainingLoops > 0;
/** fit.ts brackets each epoch loop with these. */
export function enterTraining(): void {
  trainingLoops++;
}
export function leaveTraining(): void {
  trainingLoops--;
}

/** Test hooks (never set from the command line). */
export interface TrainHooks {
  /** called after every optimizer step; returning 'abort' acts like Ctrl-C */
  onStep?(info: { model: string; epoch: number; step: number }): void | 'abort';
  /** may overwrite the normalised input batch or its labels in place (fault injection) before the forward */
  corruptBatch?(info: { model: string; epoch: number; step: number }, x: Float32Array, labels: Int32Array | Float32Array): void;
  /** may overwrite the model's parameters or buffers after the optimizer step (fault injection) */
  corruptModel?(info: { model: string; epoch: number; step: number }, model: rk.nn.Module): void;
}

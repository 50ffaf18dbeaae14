// TensorFlow.js's WebGPU backend as the peer, in this process, on the same Dawn instance and
// adapter as roskd. `navigator.gpu` is the engine's own GPU object (engine/node/dawn.ts keeps it
// referenced for the life of the process: Dawn crashes if it is collected); tfjs opens its
// own GPUDevice on that adapter. Runs of the two engines never overlap: each sample waits
// for its queue to drain before the next starts.
import type * as TF from '@tensorflow/tfjs-core';
import { gpuWait } from '../engine/device.ts';
import { getInstance } from '../engine/node/dawn.ts';

export type Tf = typeof TF;

export interface TfPeer {
  tf: Tf;
  /** per-kernel timestamps available through tf.time() */
  timestamps: boolean;
  description: string;
}

let peer: TfPeer | null = null; // module-level: kept for the whole process

export async function initTfjs(): Promise<TfPeer | string> {
  if (peer) return peer;
  try {
    const g = globalThis as { navigator?: { gpu?: unknown } };
    if (!g.navigator?.gpu) Object.defineProperty(globalThis, 'navigator', { value: { ...(g.navigator ?? {}), gpu: getInstance() }, configurable: true, writable: true });
    const tf = (await import('@tensorflow/tfjs-core')) as Tf;
    await import('@tensorflow/tfjs-backend-webgpu');
    // Quiet tfjs' console warnings about timestamp queries and the like.
    tf.env().set('DEBUG', false);
    if (!(await tf.setBackend('webgpu'))) return 'tfjs: the webgpu backend failed to initialise';
    await tf.ready();
    const be = tf.backend() as unknown as { supportTimestampQuery?: boolean; adapterInfo?: { description?: string; vendor?: string; architecture?: string } };
    const info = be.adapterInfo;
    peer = { tf, timestamps: !!be.supportTimestampQuery, description: `tfjs ${tf.version_core} webgpu on ${info?.description || info?.vendor || 'the same adapter'}` };
    return peer;
  } catch (err) {
    return `tfjs unavailable: ${(err as Error).message.split('\n')[0]}`;
  }
}

/** Submits tfjs' pending commands and waits for its queue to finish them. */
export async function tfDrain(tf: Tf): Promise<void> {
  const be = tf.backend() as unknown as { commandEncoder?: GPUCommandEncoder | null; endComputePassEncoder?: () => void; submitQueue?: () => void; device?: GPUDevice };
  // tfjs batches dispatches into an open pass and encoder; close and submit them as its own
  // readback path does (submitQueue() assumes both exist).
  if (be.commandEncoder) {
    be.endComputePassEncoder?.();
    be.submitQueue?.();
  }
  if (be.device) await gpuWait(be.device.queue.onSubmittedWorkDone());
}

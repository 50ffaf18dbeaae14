// safetensors files under Node: read, write atomically, load into / save from a model. The
// format itself (parse, serialise, copy into a model) is engine/io/safetensors.ts, re-exported
// here so that file users need one import.
import { open, readFile, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { randomBytes } from 'node:crypto';
import type { Tensor } from '../tensor.ts';
import {
  SafetensorsError,
  parseSafetensors,
  encodeSafetensors,
  encodeModelWeights,
  copyIntoModel,
  type SafetensorsFile,
  type SaveInput,
  type WeightsTarget,
  type LoadOptions,
  type LoadReport,
} from '../io/safetensors.ts';

export * from '../io/safetensors.ts';

/** Reads a safetensors file. Errors name the file (truncation, bad header, unsupported dtype). */
export async function loadSafetensors(path: string): Promise<SafetensorsFile> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new SafetensorsError(`${path}: cannot read (${(e as Error).message})`);
  }
  return parseSafetensors(bytes, path);
}

/**
 * Writes tensors to `path` atomically: a temporary file in the same directory is written,
 * fsynced and renamed over `path`, so a failure at any point leaves the previous file intact.
 */
export async function saveSafetensors(path: string, tensors: SaveInput, metadata?: Record<string, string> | null): Promise<void> {
  await writeAtomic(path, await encodeSafetensors(tensors, metadata));
}

/** Writes bytes to path via temp file + fsync + rename (+ directory fsync, best effort). */
export async function writeAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const dir = dirname(path);
  const tmp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  let fh: Awaited<ReturnType<typeof open>> | null = null;
  try {
    fh = await open(tmp, 'wx');
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await fh.write(bytes, done, Math.min(bytes.length - done, 1 << 24));
      if (bytesWritten <= 0) throw new Error(`short write at byte ${done}`);
      done += bytesWritten;
    }
    await fh.sync();
    await fh.close();
    fh = null;
    await rename(tmp, path);
  } catch (e) {
    if (fh) await fh.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw new SafetensorsError(`saveSafetensors: could not write ${path} (${(e as Error).message}); any previous file is unchanged`);
  }
  try {
    const d = await open(dir, 'r');
    await d.sync().catch(() => {});
    await d.close();
  } catch {
    // directory fsync is not possible everywhere; the rename itself is already atomic
  }
}

/**
 * Loads a safetensors file into a model. strict (default): one error naming the file lists
 * every missing, unexpected and mis-shaped name; non-strict: those are skipped and reported
 * (e.g. to reuse a backbone with a new classifier head).
 */
export async function loadModelWeights(model: WeightsTarget, path: string, opts: LoadOptions = {}): Promise<LoadReport> {
  return copyIntoModel(model, await loadSafetensors(path), path, opts);
}

/** Saves `model.stateDict()` (PyTorch names; num_batches_tracked as I64) atomically to `path`. */
export async function saveModelWeights(model: { stateDict(): Map<string, Tensor> }, path: string, metadata?: Record<string, string> | null): Promise<void> {
  await writeAtomic(path, await encodeModelWeights(model, metadata));
}

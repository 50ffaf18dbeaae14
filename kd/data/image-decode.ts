// Decoding a list of image files to uint8 CHW at the model size, in-thread or on worker threads
// (decode-worker.ts). Node only: it reads files; decoding bytes is image.ts.
import { readFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { prepareImage, type PrepareOptions } from './image.ts';
import type { BadImage, FolderLoadOptions } from './image-set.ts';
import { nowMs } from './util.ts';

/** Decode files[i] (undefined = not found) into one array; bad images fail or are listed per opts.onBadImage. */
export async function decodeAll(
  files: (string | undefined)[],
  ids: string[],
  prep: PrepareOptions,
  opts: FolderLoadOptions,
  where: string,
): Promise<{ images: Uint8Array; ok: Uint8Array; bad: BadImage[] }> {
  const n = files.length;
  const px = prep.channels * (prep.size ?? 0) * (prep.size ?? 0);
  const images = new Uint8Array(n * px);
  const ok = new Uint8Array(n);
  const bad: BadImage[] = [];
  const log = opts.log ?? (() => {});
  const fail = (i: number, reason: string) => {
    const b = { id: ids[i], file: files[i] ?? '', reason };
    if ((opts.onBadImage ?? 'fail') === 'fail') throw new Error(`${where}: bad image ${b.file || b.id}: ${reason}`);
    bad.push(b);
  };
  const t0 = nowMs();
  let done = 0;
  let lastLog = t0;
  const progress = () => {
    done++;
    const t = nowMs();
    if (t - lastLog > 5000) {
      lastLog = t;
      const rate = done / ((t - t0) / 1000);
      log(`decoded ${done}/${n} images (${rate.toFixed(0)}/s, ~${((n - done) / rate).toFixed(0)} s left)`);
    }
  };
  const store = (i: number, data: Uint8Array) => {
    images.set(data, i * px);
    ok[i] = 1;
  };
  const missing = (i: number) => fail(i, `not found (id ${ids[i]})`);

  const present: number[] = [];
  for (let i = 0; i < n; i++) {
    if (files[i]) present.push(i);
    else {
      missing(i);
      progress();
    }
  }
  const nWorkers = opts.workers ?? (present.length > 200 ? Math.min(8, Math.max(1, availableParallelism() - 1)) : 0);
  if (nWorkers > 0 && present.length > 0) {
    const res = await decodeWithWorkers(present, files as string[], prep, nWorkers, store, fail, progress);
    if (res === 'ok') return { images, ok, bad };
    log('worker threads unavailable, decoding in-thread');
  }
  for (const i of present) {
    const f = files[i]!;
    try {
      store(i, prepareImage(readFileSync(f), f, prep));
    } catch (e) {
      const msg = (e as Error).message;
      fail(i, msg.startsWith(f) ? msg.slice(f.length + 2) : msg);
    }
    progress();
  }
  return { images, ok, bad };
}

/** Runs the decode on worker threads; returns 'unavailable' if workers cannot start (then the caller decodes in-thread). */
async function decodeWithWorkers(
  queue: number[],
  files: string[],
  prep: PrepareOptions,
  nWorkers: number,
  store: (i: number, px: Uint8Array) => void,
  fail: (i: number, reason: string) => void,
  progress: () => void,
): Promise<'ok' | 'unavailable'> {
  // Workers do not inherit tsx's loader for a .ts entry in Node 20, so bootstrap it explicitly.
  let tsxApi: string;
  try {
    tsxApi = import.meta.resolve('tsx/esm/api');
  } catch {
    return 'unavailable';
  }
  const entry = new URL('./decode-worker.ts', import.meta.url).href;
  const code = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
  const workers: Worker[] = [];
  nWorkers = Math.min(nWorkers, queue.length);
  let started = false;
  try {
    await new Promise<void>((resolveAll, rejectAll) => {
      let remaining = queue.length;
      let next = 0;
      let failed = false;
      const abort = (e: unknown) => {
        if (failed) return;
        failed = true;
        rejectAll(e);
      };
      const feed = (w: Worker) => {
        if (next < queue.length) {
          const i = queue[next++];
          w.postMessage({ i, file: files[i] });
        }
      };
      for (let k = 0; k < nWorkers; k++) {
        const w = new Worker(code, { eval: true, workerData: prep });
        workers.push(w);
        w.on('message', (m: { i: number; px?: Uint8Array; error?: string }) => {
          started = true;
          if (failed) return;
          try {
            if (m.px) store(m.i, m.px);
            else {
              const f = files[m.i];
              const msg = m.error ?? 'unknown error';
              fail(m.i, msg.startsWith(f) ? msg.slice(f.length + 2) : msg);
            }
            progress();
          } catch (e) {
            abort(e);
            return;
          }
          if (--remaining === 0) resolveAll();
          else feed(w);
        });
        w.on('error', abort);
        // A worker that dies without an error event would otherwise leave us waiting forever.
        w.on('exit', (code) => {
          if (remaining > 0) abort(new Error(`image decode worker exited (code ${code}) with ${remaining} images left`));
        });
        // Two tasks in flight per worker hides message latency.
        feed(w);
        feed(w);
      }
    });
  } catch (e) {
    if (!started && !(e instanceof Error && e.message.includes('bad image'))) return 'unavailable';
    throw e;
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
  return 'ok';
}


// A lock for a file several processes change, possibly on several nodes sharing one file system
// (cluster jobs writing one run directory over NFS/Lustre): `<path>.lock`, a directory, since
// mkdir is atomic on local disks and on NFS/Lustre where O_APPEND and flock are not to be relied on.
import { mkdirSync, renameSync, rmSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { HOST, makeDirs } from './data/node-files.ts';

const sleepCell = new Int32Array(new SharedArrayBuffer(4));
const sleepMs = (ms: number): void => void Atomics.wait(sleepCell, 0, 0, ms);

export interface LockOptions {
  /** a lock older than this is a crash leftover and is broken (holders keep it for milliseconds) */
  staleMs?: number;
  /** give up waiting after this long */
  timeoutMs?: number;
}

/**
 * Runs fn while holding `<path>.lock`, so processes sharing a run directory serialise their
 * read-modify-write of one file (metrics.jsonl, stages.json). Synchronous; keep fn short.
 */
export function withFileLock<T>(path: string, fn: () => T, opts: LockOptions = {}): T {
  const lock = `${path}.lock`;
  const staleMs = opts.staleMs ?? 60_000;
  const timeoutMs = opts.timeoutMs ?? 300_000;
  const t0 = Date.now();
  let wait = 1;
  for (;;) {
    try {
      mkdirSync(lock);
      break;
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') {
        makeDirs(dirname(lock));
        continue;
      }
      if (code !== 'EEXIST') throw e;
    }
    let age = 0;
    try {
      age = Date.now() - statSync(lock).mtimeMs;
    } catch {
      continue; // released meanwhile
    }
    if (age > staleMs) {
      // a holder that crashed: move the lock aside (one breaker wins the rename) and retry
      const grave = `${lock}.stale-${process.pid}@${HOST}`;
      try {
        renameSync(lock, grave);
        rmSync(grave, { recursive: true, force: true });
      } catch {}
      continue;
    }
    if (Date.now() - t0 > timeoutMs) throw new Error(`${lock}: still locked after ${Math.round(timeoutMs / 1000)} s; if no roskd process uses ${dirname(lock)}, delete it`);
    sleepMs(wait);
    wait = Math.min(50, wait * 2);
  }
  try {
    return fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

// Small filesystem helpers shared by the data pipeline and plotting.
import { mkdirSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';

/**
 * mkdir -p with a clear error. Not `mkdirSync(p, { recursive: true })`: Node 20's recursive
 * mkdir never returns where mkdir fails with ENOENT under an existing parent (e.g. /proc/x: it
 * retries the parent, finds it, retries the child, forever, blocking even signal handlers).
 * `what` names the path's role in the error, e.g. '--out'.
 */
export function makeDirs(path: string, what = 'directory'): void {
  const abs = resolve(path);
  const missing: string[] = [];
  for (let p = abs; ; p = dirname(p)) {
    let st;
    try {
      st = statSync(p);
    } catch {
      missing.push(p);
      if (dirname(p) === p) break;
      continue;
    }
    if (!st.isDirectory()) throw new Error(`${what} ${abs}: cannot create it, ${p} is not a directory`);
    break;
  }
  for (const d of missing.reverse()) {
    try {
      mkdirSync(d);
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (err.code === 'EEXIST' && statSync(d, { throwIfNoEntry: false })?.isDirectory()) continue; // made meanwhile by another process
      const why = err.code === 'ENOENT' ? `the file system at ${dirname(d)} does not allow creating ${d}` : err.code === 'EACCES' || err.code === 'EPERM' ? `no permission to create ${d}` : err.code === 'EROFS' ? `${dirname(d)} is read-only` : err.message;
      throw new Error(`${what} ${abs}: cannot create it (${why})`);
    }
  }
}

/** Write a file atomically: temp file in the same directory, then rename, so readers never see half a file. */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  makeDirs(dirname(path));
  const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
  try {
    writeFileSync(tmp, data);
    renameSync(tmp, path);
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {}
    throw e;
  }
}

/** Milliseconds since an arbitrary origin (monotonic). */
export const nowMs = (): number => performance.now();

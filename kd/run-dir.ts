// The run directory (the Node RunStore, see run-store.ts): every artefact of a RoS-KD run lives here, written atomically (temp file +
// rename), so an interrupted or crashed run never leaves a half-written file behind, and
// several processes (one per teacher, --teacher-index; one per student method; cluster jobs
// on several nodes over NFS/Lustre) can share it: every model's files are written by one
// process only; the shared files (metrics.jsonl, metrics.csv, stages.json) change under a lock
// (kd/file-lock.ts); config.json is created once (link, atomic); the inputs every job writes
// (noise.json, subsets.json) are deterministic, identical, and renamed into place.
import { appendFileSync, existsSync, readFileSync, readdirSync, statSync, unlinkSync } from 'node:fs';
import { hostname } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import type * as rk from '../engine/index.ts';
import { saveSafetensors, loadSafetensors, type HostTensor, type SafetensorsFile } from '../engine/node/safetensors-file.ts';
import { makeDirs, writeFileAtomic, writeFileOnce, parseTempName, HOST } from './data/node-files.ts';
import { withFileLock } from './file-lock.ts';
import type { MetricsLine, RunStore } from './run-store.ts';
import { metricsCsv, metricsCsvRow } from './metrics-csv.ts';
import { eventFileHeader, eventFileName, scalarRecord } from './tfevents.ts';

export type { MetricsLine, RunStore };

export interface RunDirOptions {
  /** also write TensorBoard event files: tensorboard/<model>/events.out.tfevents.* (x axis: epoch) */
  tensorboard?: boolean;
  /** names the directory in errors (e.g. '--out') */
  what?: string;
}

export class RunDir implements RunStore {
  readonly root: string;
  readonly tensorboard: boolean;
  /** this process's event file per model (each process appends to its own file) */
  private readonly eventFiles = new Map<string, string>();
  constructor(root: string, opts: RunDirOptions = {}) {
    this.root = resolve(root);
    this.tensorboard = opts.tensorboard ?? false;
    const what = opts.what ?? 'run directory';
    makeDirs(this.root, what);
    makeDirs(this.checkpointDir, what);
  }

  path(name: string): string {
    return isAbsolute(name) ? name : join(this.root, name);
  }
  get checkpointDir(): string {
    return join(this.root, 'checkpoints');
  }
  teacherFile(i: number): string {
    return this.path(`teacher-${i}.safetensors`);
  }
  studentFile(method: string): string {
    return this.path(`student-${method}.safetensors`);
  }
  /** the resume checkpoint of one model (model + optimizer + EMA + loop state) */
  checkpointFile(model: string): string {
    return join(this.checkpointDir, `${model}.ckpt.safetensors`);
  }
  /** the record a finished model leaves (its val history, best epoch, wall time) */
  doneFile(model: string): string {
    return join(this.checkpointDir, `${model}.done.json`);
  }
  checkpointPath(file: string): string {
    return join(this.checkpointDir, file);
  }

  exists(name: string): boolean {
    return existsSync(this.path(name));
  }

  writeJson(name: string, value: unknown): void {
    writeFileAtomic(this.path(name), JSON.stringify(value, null, 2) + '\n');
  }
  /** Writes `name` unless it exists (several jobs starting at once: the first one's content stays). */
  writeJsonOnce(name: string, value: unknown): boolean {
    return writeFileOnce(this.path(name), JSON.stringify(value, null, 2) + '\n');
  }
  /** Read-modify-write of a JSON file shared by concurrent jobs, under a lock. */
  updateJson<T>(name: string, update: (prev: T | null) => T): T {
    return withFileLock(this.path(name), () => {
      const next = update(this.readJson<T>(name));
      this.writeJson(name, next);
      return next;
    });
  }
  writeText(name: string, text: string | Uint8Array): void {
    writeFileAtomic(this.path(name), text);
  }
  remove(name: string): void {
    if (existsSync(this.path(name))) unlinkSync(this.path(name));
  }
  readBytes(name: string): Uint8Array | null {
    return existsSync(this.path(name)) ? readFileSync(this.path(name)) : null;
  }
  saveTensors(name: string, tensors: Map<string, rk.Tensor | HostTensor>, metadata: Record<string, string>): Promise<void> {
    return saveSafetensors(this.path(name), tensors, metadata);
  }
  loadTensors(name: string): Promise<SafetensorsFile> {
    return loadSafetensors(this.path(name));
  }

  readJson<T>(name: string): T | null {
    const p = this.path(name);
    if (!existsSync(p)) return null;
    try {
      return JSON.parse(readFileSync(p, 'utf8')) as T;
    } catch (e) {
      throw new Error(`${p}: not valid JSON (${(e as Error).message}); delete it to recompute`);
    }
  }

  /**
   * One line per model per epoch, to metrics.jsonl and metrics.csv, and with --tensorboard to
   * this process's event file. O_APPEND alone keeps writers on one machine apart, but not NFS
   * clients on several nodes (each appends at its cached end of file), hence the lock.
   */
  appendMetrics(line: MetricsLine): void {
    const p = this.path('metrics.jsonl');
    withFileLock(p, () => {
      try {
        appendFileSync(p, JSON.stringify(line) + '\n');
      } catch (e) {
        throw new Error(`${p}: cannot append (${(e as Error).message})`, { cause: e });
      }
      const csv = this.path('metrics.csv');
      // a run directory from before metrics.csv existed gets the whole file (this line included), else one row
      if (existsSync(csv) || !writeFileOnce(csv, metricsCsv(this.readMetrics()))) appendFileSync(csv, metricsCsvRow(line));
    });
    if (this.tensorboard) this.appendEvent(line);
  }

  /**
   * Creates `path` with `text` unless it exists (a complete file appears at once: written to a
   * temp file, then hard-linked, which fails if another process got there first). False if it existed.
   */
  private appendEvent(m: MetricsLine): void {
    let f = this.eventFiles.get(m.model);
    const now = Date.now() / 1000;
    if (!f) {
      const dir = join(this.root, 'tensorboard', m.model);
      makeDirs(dir, 'tensorboard folder');
      f = join(dir, eventFileName(now, hostname(), String(process.pid)));
      appendFileSync(f, eventFileHeader(now));
      this.eventFiles.set(m.model, f);
    }
    const v = m.val ?? {};
    appendFileSync(f, scalarRecord({
      wallTime: now, step: m.epoch,
      scalars: { 'train/loss': m.loss, 'val/acc': v.acc, 'val/f1': v.f1, 'val/auc': v.auc, 'val/loss': v.loss, lr: m.lr, 'train/images_per_s': m.secs > 0 ? m.images / m.secs : NaN },
    }));
  }

  /** All metrics lines; for a (model, epoch) seen twice (an epoch redone after a resume) the last wins. */
  readMetrics(): MetricsLine[] {
    const p = this.path('metrics.jsonl');
    if (!existsSync(p)) return [];
    const byKey = new Map<string, MetricsLine>();
    for (const raw of readFileSync(p, 'utf8').split('\n')) {
      if (!raw.trim()) continue;
      try {
        const m = JSON.parse(raw) as MetricsLine;
        byKey.set(`${m.model}#${m.epoch}`, m);
      } catch {
        // a torn last line after a crash: ignore it
      }
    }
    return [...byKey.values()].sort((a, b) => (a.model < b.model ? -1 : a.model > b.model ? 1 : a.epoch - b.epoch));
  }

  /** Drops metric lines of a model from `fromEpoch` on (a fresh, non-resumed retrain). */
  resetMetrics(model: string, fromEpoch = 1): void {
    // under the append lock: a line another job appends meanwhile must not be lost by the rewrite
    withFileLock(this.path('metrics.jsonl'), () => {
      const all = this.readMetrics();
      const keep = all.filter((m) => m.model !== model || m.epoch < fromEpoch);
      if (keep.length === all.length) return;
      writeFileAtomic(this.path('metrics.jsonl'), keep.map((m) => JSON.stringify(m)).join('\n') + (keep.length ? '\n' : ''));
      writeFileAtomic(this.path('metrics.csv'), metricsCsv(keep));
    });
  }

  removeCheckpoint(model: string): void {
    for (const f of [this.checkpointFile(model)]) if (existsSync(f)) unlinkSync(f);
  }

  /**
   * Leftover temp files of the atomic writers (a process killed between write and rename), by
   * their naming schemes only: NAME.tmp-PID@HOST-RAND (data/node-files.ts writeFileAtomic;
   * NAME.tmp-PID-RAND before names carried the host) and .NAME.PID.HEX.tmp
   * (engine/node/safetensors-file.ts writeAtomic). Jobs on other machines sharing the directory
   * (array jobs on a shared file system) may be writing theirs, under PIDs unknown here.
   */
  cleanTemp(minAgeMs = 120_000): void {
    for (const dir of [this.root, this.checkpointDir])
      for (const f of readdirSync(dir)) {
        const t = parseTempName(f) ?? engineTempName(f);
        if (!t) continue;
        let age: number;
        try {
          age = Date.now() - statSync(join(dir, f)).mtimeMs;
        } catch {
          continue;
        }
        // another process sharing the directory may be writing it right now. A writer on another
        // node (its host in the name; a shared file system) is trusted for a day: its pid means
        // nothing here. One on this host is stale once its process is gone; one whose name has no
        // host (the engine's safetensors writer, older names) also once it is minAgeMs old.
        if (t.host !== null && t.host !== HOST) {
          if (age < 86_400_000) continue;
        } else if (pidAlive(t.pid) || (t.host === null && age < minAgeMs)) continue;
        try {
          unlinkSync(join(dir, f));
        } catch {}
      }
  }
}

/** .NAME.PID.HEX.tmp, engine/node/safetensors-file.ts writeAtomic's temp name (no host in it). */
function engineTempName(f: string): { pid: number; host: null } | null {
  const m = /^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$/.exec(f);
  return m ? { pid: Number(m[1]), host: null } : null;
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Default run directory name: runs/<preset>-<YYYYMMDD-HHMMSS>. */
export function defaultRunName(preset: string, now = new Date()): string {
  const p = (n: number) => String(n).padStart(2, '0');
  return join('runs', `${preset}-${now.getFullYear()}${p(now.getMonth() + 1)}${p(now.getDate())}-${p(now.getHours())}${p(now.getMinutes())}${p(now.getSeconds())}`);
}

// The run directory (the Node RunStore, see run-store.ts): every artefact of a RoS-KD run lives here, written atomically (temp file +
// rename), so an interrupted or crashed run never leaves a half-written file behind, and
// several processes (one per teacher, --teacher-index) can share it.
import { appendFileSync, existsSync, linkSync, readFileSync, readdirSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { hostname } from 'node:os';
import { isAbsolute, join, resolve } from 'node:path';
import type * as rk from '../engine/index.ts';
import { saveSafetensors, loadSafetensors, type HostTensor, type SafetensorsFile } from '../engine/node/safetensors-file.ts';
import { makeDirs, writeFileAtomic } from './data/node-files.ts';
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
   * One line per model per epoch, to metrics.jsonl and metrics.csv (O_APPEND: concurrent writers
   * do not interleave short lines), and with --tensorboard to this process's event file.
   */
  appendMetrics(line: MetricsLine): void {
    const p = this.path('metrics.jsonl');
    try {
      appendFileSync(p, JSON.stringify(line) + '\n');
    } catch (e) {
      throw new Error(`${p}: cannot append (${(e as Error).message})`, { cause: e });
    }
    const csv = this.path('metrics.csv');
    // a run directory from before metrics.csv existed gets the whole file, else one row
    if (!existsSync(csv) && this.createExclusive(csv, metricsCsv(this.readMetrics()))) {
      // created, with this line (already in metrics.jsonl) included
    } else appendFileSync(csv, metricsCsvRow(line));
    if (this.tensorboard) this.appendEvent(line);
  }

  /**
   * Creates `path` with `text` unless it exists (a complete file appears at once: written to a
   * temp file, then hard-linked, which fails if another process got there first). False if it existed.
   */
  private createExclusive(path: string, text: string): boolean {
    const tmp = `${path}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`;
    writeFileSync(tmp, text);
    try {
      linkSync(tmp, path);
      return true;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw e;
    } finally {
      unlinkSync(tmp);
    }
  }

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
    const all = this.readMetrics();
    const keep = all.filter((m) => m.model !== model || m.epoch < fromEpoch);
    // rewrite only when needed: other processes may be appending to the same file
    if (keep.length === all.length) return;
    writeFileAtomic(this.path('metrics.jsonl'), keep.map((m) => JSON.stringify(m)).join('\n') + (keep.length ? '\n' : ''));
    writeFileAtomic(this.path('metrics.csv'), metricsCsv(keep));
  }

  removeCheckpoint(model: string): void {
    for (const f of [this.checkpointFile(model)]) if (existsSync(f)) unlinkSync(f);
  }

  /**
   * Leftover temp files of the atomic writers (a process killed between write and rename), by
   * their naming schemes only: NAME.tmp-PID-RAND (data/node-files.ts writeFileAtomic) and
   * .NAME.PID.HEX.tmp (engine/node/safetensors-file.ts writeAtomic). A file is stale when its
   * process is not running here and it has not been written to for `minAgeMs`: jobs on other
   * machines sharing the directory (array jobs) may be writing theirs, under PIDs unknown here.
   */
  cleanTemp(minAgeMs = 120_000): void {
    for (const dir of [this.root, this.checkpointDir])
      for (const f of readdirSync(dir)) {
        const m = TEMP_NAMES.map((re) => re.exec(f)).find((x) => x);
        // another process sharing the directory may be writing it right now
        if (!m || pidAlive(Number(m[1]))) continue;
        try {
          if (Date.now() - statSync(join(dir, f)).mtimeMs < minAgeMs) continue;
          unlinkSync(join(dir, f));
        } catch {}
      }
  }
}

const TEMP_NAMES = [/\.tmp-(\d+)-[a-z0-9]+$/, /^\..+\.(\d+)\.[0-9a-f]{8}\.tmp$/];

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

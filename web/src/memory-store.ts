// A RunStore held in memory: what kd/fit.ts, checkpoint.ts and report.ts write in the page (models,
// checkpoints, metrics, report files). Every write replaces a whole entry, so a stopped or failed
// run leaves consistent entries; the page offers them as downloads.
import type * as rk from '../../engine/index.ts';
import { encodeSafetensors, parseSafetensors, type HostTensor, type SafetensorsFile } from '../../engine/io/safetensors.ts';
import type { MetricsLine, RunStore } from '../../kd/run-store.ts';

export class MemoryStore implements RunStore {
  readonly files = new Map<string, Uint8Array>();
  private metrics: MetricsLine[] = [];
  constructor(readonly root = 'run', private readonly onMetrics?: (m: MetricsLine) => void) {}

  path(name: string): string {
    return name.startsWith(this.root + '/') ? name : `${this.root}/${name}`;
  }
  teacherFile(i: number): string {
    return this.path(`teacher-${i}.safetensors`);
  }
  studentFile(method: string): string {
    return this.path(`student-${method}.safetensors`);
  }
  checkpointFile(model: string): string {
    return this.path(`checkpoints/${model}.ckpt.safetensors`);
  }
  doneFile(model: string): string {
    return this.path(`checkpoints/${model}.done.json`);
  }
  checkpointPath(file: string): string {
    return this.path(`checkpoints/${file}`);
  }
  exists(name: string): boolean {
    return this.files.has(this.path(name));
  }
  remove(name: string): void {
    this.files.delete(this.path(name));
  }
  readJson<T>(name: string): T | null {
    const b = this.files.get(this.path(name));
    return b ? (JSON.parse(new TextDecoder().decode(b)) as T) : null;
  }
  writeJson(name: string, value: unknown): void {
    this.writeText(name, JSON.stringify(value, null, 2) + '\n');
  }
  readBytes(name: string): Uint8Array | null {
    return this.files.get(this.path(name)) ?? null;
  }
  writeText(name: string, data: string | Uint8Array): void {
    this.files.set(this.path(name), typeof data === 'string' ? new TextEncoder().encode(data) : Uint8Array.from(data));
  }
  async saveTensors(name: string, tensors: Map<string, rk.Tensor | HostTensor>, metadata: Record<string, string>): Promise<void> {
    this.files.set(this.path(name), await encodeSafetensors(tensors, metadata));
  }
  async loadTensors(name: string): Promise<SafetensorsFile> {
    const b = this.files.get(this.path(name));
    if (!b) throw new Error(`${this.path(name)}: not in this page's run`);
    return parseSafetensors(b, this.path(name));
  }
  appendMetrics(line: MetricsLine): void {
    this.metrics.push(line);
    this.onMetrics?.(line);
  }
  readMetrics(): MetricsLine[] {
    const last = new Map<string, MetricsLine>();
    for (const m of this.metrics) last.set(`${m.model}\u0000${m.epoch}`, m);
    return [...last.values()];
  }
  resetMetrics(model: string, fromEpoch = 1): void {
    this.metrics = this.metrics.filter((m) => m.model !== model || m.epoch < fromEpoch);
  }
}

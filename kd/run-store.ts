// Where a run's artefacts go, as an interface: training, checkpoints and the report only talk to
// a RunStore, so they need no file system. kd/run-dir.ts is the Node implementation (a directory,
// atomic writes); a browser can provide an in-memory or download-backed one.
import type * as rk from '../engine/index.ts';
import type { HostTensor, SafetensorsFile } from '../engine/io/safetensors.ts';

export interface MetricsLine {
  model: string;
  epoch: number;
  /** optimizer steps of this model at the end of the epoch (epoch x steps per epoch) */
  step?: number;
  /** mean training loss of the epoch */
  loss: number;
  lr: number;
  val: Record<string, number>;
  secs: number;
  images: number;
  /** wall-clock time the line was written (ISO 8601) */
  time?: string;
  [k: string]: unknown;
}

/**
 * A run's storage. Every `name` is a path relative to the run root, or one this store returned
 * (path(), teacherFile(), checkpointFile(), ...); path() is also what messages show.
 */
export interface RunStore {
  /** the run's location, as shown to the user */
  readonly root: string;
  path(name: string): string;
  teacherFile(i: number): string;
  studentFile(method: string): string;
  /** the resume checkpoint of one model (model + optimizer + EMA + loop state) */
  checkpointFile(model: string): string;
  /** the record a finished model leaves (its val history, best epoch, wall time) */
  doneFile(model: string): string;
  /** a scratch artefact under the checkpoints area (e.g. cached teacher logits) */
  checkpointPath(file: string): string;

  exists(name: string): boolean;
  remove(name: string): void;
  readJson<T>(name: string): T | null;
  writeJson(name: string, value: unknown): void;
  readBytes(name: string): Uint8Array | null;
  writeText(name: string, data: string | Uint8Array): void;
  /** tensors (GPU or host) and string metadata, written atomically as safetensors */
  saveTensors(name: string, tensors: Map<string, rk.Tensor | HostTensor>, metadata: Record<string, string>): Promise<void>;
  loadTensors(name: string): Promise<SafetensorsFile>;

  /** one line per model per epoch (metrics.jsonl, and its flat twin metrics.csv) */
  appendMetrics(line: MetricsLine): void;
  /** all metrics lines; for a (model, epoch) seen twice (an epoch redone after a resume) the last wins */
  readMetrics(): MetricsLine[];
  /** drops metric lines of a model from `fromEpoch` on (a fresh, non-resumed retrain) */
  resetMetrics(model: string, fromEpoch?: number): void;
}

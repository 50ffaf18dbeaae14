// Progress output of training: live status lines on a terminal (rewritten in place), plain lines
// in logs, or nothing. With a run plan (setPlan: every model of the run and its optimizer steps)
// a whole-run line (model i of n, stage, overall ETA) sits above the per-model line. Writes to a
// stream-like object (process.stderr by default). The formatting is pure functions, tested alone.

/** What Progress writes the live line to (a Node WriteStream fits). */
export interface ProgressStream {
  write(s: string): unknown;
  columns?: number;
  isTTY?: boolean;
}

export interface ProgressInfo {
  stage: string;
  model: string;
  epoch: number;
  epochs: number;
  step: number;
  steps: number;
  loss: number;
  ips: number;
  eta: number;
}

/** One model of a run, in training order. */
export interface PlanItem {
  model: string;
  stage: string;
  /** optimizer steps over all its epochs */
  steps: number;
}

/** Where the whole run stands (what the run line shows). */
export interface RunStatus {
  /** 1-based position of the current model in the plan */
  index: number;
  count: number;
  model: string;
  stage: string;
  /** steps done / all steps of the plan */
  fraction: number;
  elapsed: number;
  /** seconds left for the whole plan (NaN while unknown) */
  eta: number;
}

export const fmtSecs = (s: number): string => (!Number.isFinite(s) ? '?' : s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`);

export function formatModelLine(p: ProgressInfo): string {
  return `[${p.stage}] ${p.model} epoch ${p.epoch}/${p.epochs} step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)} ${p.ips.toFixed(0)} img/s ETA ${fmtSecs(p.eta)}`;
}

export function formatRunLine(r: RunStatus): string {
  const pct = Number.isFinite(r.fraction) ? `${(100 * Math.min(1, Math.max(0, r.fraction))).toFixed(0)}%` : '?%';
  return `[run] model ${r.index} of ${r.count} (${r.model}, stage ${r.stage}) ${pct} done, ${fmtSecs(r.elapsed)} elapsed, about ${fmtSecs(r.eta)} left`;
}

const MiB = 1024 * 1024;
const fmtMiB = (b: number): string => `${(b / MiB).toFixed(b >= 100 * MiB ? 0 : 1)} MiB`;

/** A download's progress: bytes (of the total when the server sent Content-Length), rate, ETA. */
export function formatDownload(p: { file: string; received: number; total: number | null; secs: number }): string {
  const rate = p.secs > 0 ? p.received / p.secs : NaN;
  const rateS = Number.isFinite(rate) ? `${fmtMiB(rate)}/s` : '';
  if (p.total && p.total > 0)
    return `downloading ${p.file}: ${fmtMiB(p.received)} of ${fmtMiB(p.total)} (${((100 * p.received) / p.total).toFixed(0)}%) ${rateS} ETA ${fmtSecs((p.total - p.received) / rate)}`.trimEnd();
  return `downloading ${p.file}: ${fmtMiB(p.received)} ${rateS}`.trimEnd();
}

/**
 * A line cut to a terminal's width, leaving the last column free (writing into it makes some
 * terminals wrap). An unknown width (undefined, or 0 as some terminals and pipes report) cuts nothing.
 */
export function fitWidth(line: string, columns: number | undefined): string {
  if (!columns || !Number.isFinite(columns) || columns <= 1 || line.length < columns) return line;
  return line.slice(0, columns - 1);
}

/**
 * Overall ETA: each model's remaining steps at the measured wall-clock rate of its stage (steps
 * per second, validation and setup included), or the rate of any stage seen so far.
 */
export function runEta(items: readonly { stage: string; steps: number; done: number }[], rates: Readonly<Record<string, number>>): number {
  const any = Object.values(rates).filter((r) => r > 0);
  const fallback = any.length ? any.reduce((a, b) => a + b, 0) / any.length : NaN;
  let secs = 0;
  for (const it of items) {
    const left = Math.max(0, it.steps - it.done);
    if (left === 0) continue;
    secs += left / (rates[it.stage] > 0 ? rates[it.stage] : fallback);
  }
  return secs;
}

/** Live status lines on a TTY (rewritten in place), plain lines otherwise, or nothing. */
export class Progress {
  private liveLines = 0;
  private lastDraw = -Infinity;
  private lastPlain = -Infinity;
  private plan: (PlanItem & { done: number })[] = [];
  private readonly stageTime: Record<string, { steps: number; secs: number }> = {};
  private lastTick = NaN;
  private readonly t0: number;
  constructor(
    readonly mode: 'tty' | 'plain' | 'none',
    private readonly out: ProgressStream = process.stderr,
    private readonly print: (line: string) => void = (l) => console.log(l),
    private readonly now: () => number = () => performance.now(),
  ) {
    this.t0 = now();
  }

  /** 'auto': a live line when the stream is a terminal, plain lines otherwise. */
  static auto(mode: 'auto' | 'tty' | 'plain' | 'none', out: ProgressStream = process.stderr, print?: (line: string) => void): Progress {
    return new Progress(mode === 'auto' ? (out.isTTY ? 'tty' : 'plain') : mode, out, print);
  }

  /** The models of the run in order, with their steps: enables the whole-run line. */
  setPlan(items: readonly PlanItem[]): void {
    this.plan = items.map((it) => ({ ...it, done: 0 }));
  }

  /** A model needs no more steps (finished, or already trained and skipped). */
  modelDone(model: string): void {
    const it = this.plan.find((p) => p.model === model);
    if (it) it.done = it.steps;
  }

  /** The whole-run status after an update (null without a plan or for a model outside it). */
  runStatus(model: string): RunStatus | null {
    const i = this.plan.findIndex((p) => p.model === model);
    if (i < 0) return null;
    const total = this.plan.reduce((a, p) => a + p.steps, 0);
    const done = this.plan.reduce((a, p) => a + Math.min(p.done, p.steps), 0);
    const rates: Record<string, number> = {};
    for (const [k, v] of Object.entries(this.stageTime)) if (v.secs > 0 && v.steps > 0) rates[k] = v.steps / v.secs;
    return { index: i + 1, count: this.plan.length, model, stage: this.plan[i].stage, fraction: total > 0 ? done / total : NaN, elapsed: (this.now() - this.t0) / 1000, eta: runEta(this.plan, rates) };
  }

  update(p: ProgressInfo): void {
    const now = this.now();
    const it = this.plan.find((x) => x.model === p.model);
    if (it) {
      const done = (p.epoch - 1) * p.steps + p.step;
      it.steps = p.epochs * p.steps; // the real count, once the model runs
      // wall time since the previous update (validation, checkpoints included) goes to this stage
      if (Number.isFinite(this.lastTick) && done > it.done) {
        const st = (this.stageTime[it.stage] ??= { steps: 0, secs: 0 });
        st.steps += it.done > 0 ? done - it.done : 1;
        st.secs += (now - this.lastTick) / 1000;
      }
      it.done = done;
      this.lastTick = now;
    }
    if (this.mode === 'none') return;
    const run = it ? this.runStatus(p.model) : null;
    const lines = [...(run ? [formatRunLine(run)] : []), formatModelLine(p)];
    if (this.mode === 'tty') {
      if (now - this.lastDraw < 150 && p.step !== p.steps) return;
      this.lastDraw = now;
      this.draw(lines);
    } else if (now - this.lastPlain > 30_000) {
      // plain output (logs, CI): every 30 s at most, plus the per-epoch lines
      this.lastPlain = now;
      for (const l of lines) this.print(l);
    }
  }

  /** A transient status line (e.g. download bytes): live on a TTY, every 30 s in plain mode. */
  status(line: string): void {
    if (this.mode === 'none') return;
    const now = this.now();
    if (this.mode === 'tty') {
      if (now - this.lastDraw < 150) return;
      this.lastDraw = now;
      this.draw([line]);
    } else if (now - this.lastPlain > 30_000) {
      this.lastPlain = now;
      this.print(line);
    }
  }

  private draw(lines: string[]): void {
    let s = this.liveLines > 1 ? `\r\x1b[${this.liveLines - 1}A` : '\r';
    s += lines.map((l) => `\x1b[2K${fitWidth(l, this.out.columns)}`).join('\n');
    // fewer lines than before: clear the rest, then come back
    for (let k = lines.length; k < this.liveLines; k++) s += '\n\x1b[2K';
    if (this.liveLines > lines.length) s += `\x1b[${this.liveLines - lines.length}A`;
    this.out.write(s);
    this.liveLines = lines.length;
  }

  /** A permanent line (clears the live lines first). */
  log(line: string): void {
    if (this.mode === 'none') return;
    this.clear();
    this.print(line);
  }

  clear(): void {
    if (this.mode === 'tty' && this.liveLines > 0) {
      this.out.write('\r\x1b[2K' + clearUp(this.liveLines - 1));
      this.liveLines = 0;
    }
  }
}

// clear n lines above the cursor, ending at the start of the topmost
function clearUp(n: number): string {
  let s = '';
  for (let k = 0; k < n; k++) s += '\x1b[1A\r\x1b[2K';
  return s;
}

export const fmtPct = (v: number): string => (Number.isFinite(v) ? (100 * v).toFixed(1) + '%' : '-');
export const fmtNum = (v: number, d = 3): string => (Number.isFinite(v) ? v.toFixed(d) : '-');

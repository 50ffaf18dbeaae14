// Progress output of training: a live status line on a terminal (rewritten in place), plain lines
// in logs, or nothing. Writes to a stream-like object (process.stderr by default).

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

const fmtSecs = (s: number): string => (!Number.isFinite(s) ? '?' : s >= 3600 ? `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m` : s >= 60 ? `${Math.floor(s / 60)}m${String(Math.floor(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`);

/** A live status line on a TTY (rewritten in place), plain lines otherwise, or nothing. */
export class Progress {
  private live = '';
  private lastDraw = 0;
  private lastPlain = 0;
  constructor(
    readonly mode: 'tty' | 'plain' | 'none',
    private readonly out: ProgressStream = process.stderr,
    private readonly print: (line: string) => void = (l) => console.log(l),
  ) {}

  /** 'auto': a live line when the stream is a terminal, plain lines otherwise. */
  static auto(mode: 'auto' | 'tty' | 'plain' | 'none', out: ProgressStream = process.stderr, print?: (line: string) => void): Progress {
    return new Progress(mode === 'auto' ? (out.isTTY ? 'tty' : 'plain') : mode, out, print);
  }

  update(p: ProgressInfo): void {
    if (this.mode === 'none') return;
    const now = performance.now();
    const line = `[${p.stage}] ${p.model} epoch ${p.epoch}/${p.epochs} step ${p.step}/${p.steps} loss ${p.loss.toFixed(4)} ${p.ips.toFixed(0)} img/s ETA ${fmtSecs(p.eta)}`;
    if (this.mode === 'tty') {
      if (now - this.lastDraw < 150 && p.step !== p.steps) return;
      this.lastDraw = now;
      this.live = line;
      this.out.write(`\r\x1b[2K${line.slice(0, (this.out.columns ?? 160) - 1)}`);
    } else if (now - this.lastPlain > 30_000) {
      // plain output (logs, CI): one line every 30 s at most, plus the per-epoch lines
      this.lastPlain = now;
      this.print(line);
    }
  }

  /** A permanent line (clears the live line first). */
  log(line: string): void {
    if (this.mode === 'none') return;
    this.clear();
    this.print(line);
  }

  clear(): void {
    if (this.mode === 'tty' && this.live) {
      this.out.write('\r\x1b[2K');
      this.live = '';
    }
  }
}

export const fmtPct = (v: number): string => (Number.isFinite(v) ? (100 * v).toFixed(1) + '%' : '-');
export const fmtNum = (v: number, d = 3): string => (Number.isFinite(v) ? v.toFixed(d) : '-');

// Keeps Dawn's two harmless start-up warnings ("maxDynamic{Uniform,Storage}BuffersPerPipelineLayout
// artificially reduced from 1000000 to 16 ...", printed on lavapipe and any adapter reporting more
// than 16 dynamic buffers) out of the commands' output. Dawn prints them from native code with
// fprintf(stderr) while normalising the adapter's limits at the first requestAdapter(); no Dawn
// toggle or instance flag turns them off, and native writes bypass process.stderr, so the only
// place to drop them is outside the process: a command relaunches itself as a child whose fd 2 is a
// pipe, and the parent copies that pipe to its own stderr without exactly these lines.
//
// The child's JavaScript output does not go through the pipe when stderr is a terminal or a file:
// the child gets the real stderr as an extra fd and process.stderr writes there, so live progress
// lines (isTTY, columns, resizes) and the order of stderr and stdout in a log are unchanged. Only
// native writes (Dawn's) pass through the filter, which forwards everything else at once.
//
// ROSKD_VERBOSE=1 runs everything in one process with Dawn's output untouched.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { fstatSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import type { Readable } from 'node:stream';
import { Writable } from 'node:stream';
import { isatty, WriteStream } from 'node:tty';

/** The lines dropped: Dawn's limit-normalisation warnings, nothing else. */
export const DAWN_NOISE: readonly RegExp[] = [
  /^Warning: maxDynamic(Uniform|Storage)BuffersPerPipelineLayout artificially reduced from \d+ to \d+ to fit dynamic offset allocation limit\.\r?$/,
];
/** Every noise line starts with this, so other text can be forwarded before its line ends. */
const NOISE_PREFIX = 'Warning: maxDynamic';

export function isDawnNoise(line: string): boolean {
  return DAWN_NOISE.some((re) => re.test(line));
}

const FILTERED_ENV = 'ROSKD_STDERR_FILTERED';
/** this process is the child of spawnFiltered (its native stderr is being filtered) */
let filteredChild = false;
const FD_ENV = 'ROSKD_REAL_STDERR_FD';

/** ROSKD_VERBOSE=1 (or true/yes/on): show Dawn's warnings, run commands in one process. */
export function verbose(env = process.env): boolean {
  return /^(1|true|yes|on)$/i.test(env.ROSKD_VERBOSE ?? '');
}

/**
 * Copies src to dst without the noise lines. A partial line that cannot become a noise line is
 * forwarded at once (progress lines end in \r and never see a \n). Resolves when src ends.
 */
export function filterDawnNoise(src: Readable, dst: { write(s: string): unknown }): Promise<void> {
  let held = ''; // start of a line that may still turn out to be noise
  let passing = false; // the current line is known not to be noise: forward as it comes
  src.setEncoding('utf8');
  const feed = (text: string): void => {
    let start = 0;
    while (start < text.length) {
      const nl = text.indexOf('\n', start);
      const piece = nl < 0 ? text.slice(start) : text.slice(start, nl + 1);
      start += piece.length;
      if (passing) {
        dst.write(piece);
        if (nl >= 0) passing = false;
        continue;
      }
      held += piece;
      if (nl >= 0) {
        if (!isDawnNoise(held.slice(0, -1))) dst.write(held);
        held = '';
      } else if (!NOISE_PREFIX.startsWith(held) && !held.startsWith(NOISE_PREFIX)) {
        dst.write(held);
        held = '';
        passing = true;
      }
    }
  };
  return new Promise((resolve) => {
    src.on('data', feed);
    src.on('error', () => {}); // the writer died: what it wrote is already forwarded
    src.on('close', () => {
      if (held && !isDawnNoise(held)) dst.write(held);
      held = '';
      resolve();
    });
  });
}

/** The real stderr can be handed to the child when it is a terminal or a regular file. */
function shareableStderr(): boolean {
  try {
    return isatty(2) || fstatSync(2).isFile();
  } catch {
    return false;
  }
}

/**
 * child_process.spawn with the child's native stderr filtered (the same arguments: a drop-in
 * replacement). stdio[2] becomes a pipe copied to this process's stderr without Dawn's noise, and
 * the real stderr is passed as an extra fd that the child's process.stderr adopts (see
 * adoptRealStderr). With ROSKD_VERBOSE=1 it is plain spawn. A supervisor process (Ctrl-C handling)
 * uses this instead of spawn to get the same filtering.
 */
export function spawnFiltered(command: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  if (verbose()) return spawn(command, args, options);
  const given = options.stdio;
  const stdio: NonNullable<SpawnOptions['stdio']> & unknown[] = Array.isArray(given) ? [...given] : [given ?? 'pipe', given ?? 'pipe', given ?? 'pipe'];
  if (stdio[2] !== 'inherit' && stdio[2] !== undefined && stdio[2] !== 2) return spawn(command, args, options); // the caller reads stderr itself
  stdio[2] = 'pipe';
  const env: NodeJS.ProcessEnv = { ...(options.env ?? process.env), [FILTERED_ENV]: '1' };
  delete env[FD_ENV];
  if (shareableStderr()) {
    env[FD_ENV] = String(stdio.length);
    stdio.push(2);
  }
  const child = spawn(command, args, { ...options, stdio, env });
  void filterDawnNoise(child.stderr!, process.stderr);
  return child;
}

/**
 * In a child started by spawnFiltered: process.stderr writes to the real stderr (the extra fd),
 * so JavaScript output keeps its terminal; only native writes go through the filter. Runs when
 * this module is imported; idempotent.
 */
export function adoptRealStderr(): void {
  if (process.env[FILTERED_ENV] !== '1') return;
  // Remembered here and removed from the environment: a command this one starts later (a job
  // script, a nested run) writes to its own stderr, not this filter's pipe, and must filter itself.
  filteredChild = true;
  delete process.env[FILTERED_ENV];
  const v = process.env[FD_ENV];
  if (!v) {
    // stderr is the filter's pipe: if the parent is gone, a write must not crash the child
    process.stderr.on('error', () => {});
    return;
  }
  delete process.env[FD_ENV]; // the fd is not passed on to grandchildren
  const fd = Number(v);
  let stream: NodeJS.WriteStream;
  if (isatty(fd)) {
    const tty = new WriteStream(fd);
    // as Node does for its own stderr: keep columns current
    process.on('SIGWINCH', () => (tty as unknown as { _refreshSize?: () => void })._refreshSize?.());
    stream = tty;
  } else {
    stream = new Writable({
      write(chunk: Buffer, _enc, cb) {
        try {
          writeSync(fd, chunk);
          cb();
        } catch (e) {
          cb(e as Error);
        }
      },
    }) as unknown as NodeJS.WriteStream;
    Object.assign(stream, { fd, isTTY: false });
  }
  Object.defineProperty(process, 'stderr', { configurable: true, enumerable: true, get: () => stream });
}
adoptRealStderr();

/**
 * Call at the start of a command's main() (after --help and usage errors). In the launching
 * process it runs the same command again as a child through spawnFiltered and exits with the
 * child's exit code, never returning; in that child, or with ROSKD_VERBOSE=1, it returns at once.
 *
 * Signals: the child is in the terminal's process group, so Ctrl-C reaches it directly (and its
 * own handlers decide); this process ignores SIGINT, so the child never sees a press twice.
 * SIGTERM and SIGHUP, which a sender may aim at this process alone, are passed on.
 */
export async function quietDawnWarnings(): Promise<void> {
  if (filteredChild || process.env[FILTERED_ENV] === '1' || verbose()) return;
  // a debugger wants the process it attached to, and its port cannot be shared
  if (process.execArgv.some((a) => a.startsWith('--inspect')) || process.platform === 'win32') return;
  const child = spawnFiltered(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit' });
  process.on('SIGINT', () => {});
  for (const sig of ['SIGTERM', 'SIGHUP'] as const)
    process.on(sig, () => {
      try {
        child.kill(sig);
      } catch {} // already gone
    });
  await new Promise<never>(() => {
    child.on('error', (e) => {
      console.error(`error: could not start ${process.argv[1]}: ${e.message}`);
      process.exit(1);
    });
    // 'close': the child has exited and its stderr pipe is drained
    child.on('close', (code, signal) => process.exit(signal ? 128 + (constants.signals[signal] ?? 0) : (code ?? 1)));
  });
}

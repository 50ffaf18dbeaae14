// Ctrl-C and SIGTERM that always end with a checkpoint, however busy the training process is.
//
// Why a second process: under `npx tsx kd/train.ts` (and `npm run train`) the terminal's SIGINT
// reaches every process of the foreground group, and tsx's own parent process then waits only
// 30 ms for its child to acknowledge (which needs the child's main thread); if it does not, tsx
// sends the child a second SIGINT and, 30 ms later, SIGKILL. A training process is often busy
// for longer than that (synchronous pipeline compilation, recording a large step, serialising a
// checkpoint), so no handler inside it can be reliable. So the command-line entry re-launches
// itself as a worker in its own session (out of the terminal's process group) and stays idle as
// a supervisor: it acknowledges tsx at once, prints what will happen, forwards ONE interrupt to
// the worker, and exits with the worker's exit code. The worker checkpoints after its current
// step and exits 130.
//
// Repeated Ctrl-C: signals within SAME_PRESS_MS of the last counted one are the same press
// (tsx re-sends, npm forwards its own copy); the FORCE_PRESSES-th distinct press kills the
// worker without waiting (the last saved checkpoint is kept: every file is written atomically).
// SIGTERM (Slurm, systemd, kill) is forwarded once and never escalates: its sender sends SIGKILL
// itself when it stops waiting. SIGUSR1 (Slurm's time-limit warning, which the job scripts of
// kd/slurm/ forward to node) is handled the same way; the listener also keeps it from starting
// Node's inspector. If the supervisor dies (SIGKILL, closed terminal), the worker sees its IPC
// channel close and checkpoints and exits the same way.
//
// ROSKD_NO_SUPERVISOR=1 (and --inspect) runs in one process: the same press policy, without
// the guarantee under tsx. Cost: one idle Node process (~90 MiB) and the module graph loaded
// twice at start-up (1-2 s).
import { spawnFiltered } from '../engine/node/dawn-stderr.ts';
import { constants } from 'node:os';

const WORKER_ENV = 'ROSKD_SUPERVISED';
const OFF_ENV = 'ROSKD_NO_SUPERVISOR';
/** Signals closer together than this (to the last counted one) are one Ctrl-C. */
export const SAME_PRESS_MS = 1000;
/** The distinct Ctrl-C press that quits at once, without waiting for the checkpoint. */
export const FORCE_PRESSES = 3;
/** Signals that ask once for a checkpoint and never escalate: SIGTERM, and SIGUSR1 from Slurm (kd/slurm/sbatch.ts). */
export const CHECKPOINT_SIGNALS = ['SIGTERM', 'SIGUSR1'] as const;

export interface SuperviseOptions {
  /** asks the work to checkpoint and stop after its current step (trainer.requestInterrupt) */
  onInterrupt: () => void;
  /**
   * true while a model is training (a checkpoint is worth waiting for); otherwise an interrupt
   * exits 130 at once: everything written so far is complete (atomic writes), nothing is lost.
   */
  training: () => boolean;
  /** how to continue, e.g. 'continue with --resume' */
  resumeHint: string;
}

/**
 * Call at the top of a command's main(), after --help and usage errors. In the launching process
 * it starts the real work as a child and never returns (the process exits with the child's exit
 * code); in that child, or with ROSKD_NO_SUPERVISOR=1, it installs the interrupt handlers and
 * returns at once.
 */
export async function supervise(o: SuperviseOptions): Promise<void> {
  if (process.env[WORKER_ENV] === '1') return installWorker(o);
  // a debugger (--inspect) wants the process it attached to, and its port cannot be shared
  const debugging = process.execArgv.some((a) => a.startsWith('--inspect'));
  if (process.env[OFF_ENV] === '1' || process.platform === 'win32' || debugging) return installInProcess(o);
  await runSupervisor();
}

/** Counts distinct presses: 0 for a duplicate of the last counted one, else 1, 2, ... */
export class PressCounter {
  private last = -Infinity;
  private n = 0;
  press(now = performance.now()): number {
    if (now - this.last < SAME_PRESS_MS) return 0;
    this.last = now;
    return ++this.n;
  }
}

const say = (s: string): void => void process.stderr.write(`\n${s}\n`);
const FIRST = `saving a checkpoint after this step, then stopping with exit code 130 (press Ctrl-C ${FORCE_PRESSES - 1} more times, a second apart, to quit without it)`;
const AGAIN = (left: number) => `still finishing the step and its checkpoint; Ctrl-C ${left} more time${left > 1 ? 's' : ''} quits without it`;
const FORCED = 'Ctrl-C pressed ' + FORCE_PRESSES + ' times: quitting without a new checkpoint (the last saved one is kept)';

function runSupervisor(): Promise<never> {
  // the same node flags (tsx's loader) and script; the marker makes the child the worker
  // spawnFiltered: the worker's native stderr goes through the filter for Dawn's start-up warnings
  const child = spawnFiltered(process.execPath, [...process.execArgv, ...process.argv.slice(1)], {
    detached: true, // own session and process group: the terminal's Ctrl-C and tsx's re-sends miss it
    stdio: ['inherit', 'inherit', 'inherit', 'ipc'],
    env: { ...process.env, [WORKER_ENV]: '1' },
  });
  const group = (sig: NodeJS.Signals): void => {
    try {
      process.kill(-child.pid!, sig);
    } catch {} // already gone
  };
  const presses = new PressCounter();
  let forwarded = false;
  let forced = false;
  const forward = (): void => {
    if (!forwarded) group('SIGINT');
    forwarded = true;
  };
  process.on('SIGINT', () => {
    const n = presses.press();
    if (n === 0) return;
    if (n >= FORCE_PRESSES) {
      say(FORCED);
      forced = true;
      group('SIGKILL');
      return;
    }
    if (n === 1 || !forwarded) say(`Ctrl-C: ${FIRST}`);
    else say(`Ctrl-C: ${AGAIN(FORCE_PRESSES - n)}`);
    forward();
  });
  for (const sig of CHECKPOINT_SIGNALS)
    process.on(sig, () => {
      if (!forwarded) say(`${sig}: saving a checkpoint after this step, then stopping with exit code 130`);
      forward();
    });
  // job control and resizes: the worker is outside the terminal's process group, so pass them on
  process.on('SIGTSTP', () => {
    group('SIGSTOP');
    process.kill(process.pid, 'SIGSTOP');
  });
  process.on('SIGCONT', () => group('SIGCONT'));
  process.on('SIGWINCH', () => group('SIGWINCH'));
  return new Promise<never>(() => {
    child.on('error', (e) => {
      console.error(`error: could not start the worker process: ${e.message}`);
      process.exit(1);
    });
    // 'close': the worker has exited and its filtered stderr pipe is drained
    child.on('close', (code, signal) => {
      if (forced) process.exit(130);
      if (signal) {
        // a SIGINT before the worker installed its handler: nothing had started, 130 like Ctrl-C
        if (signal !== 'SIGINT') console.error(`\nerror: the worker process was killed by ${signal}${signal === 'SIGKILL' ? ' (out of memory?)' : ''}`);
        process.exit(128 + (constants.signals[signal] ?? 0));
      }
      process.exit(code ?? 1);
    });
  });
}

function installWorker(o: SuperviseOptions): void {
  // the supervisor prints the messages and counts presses; here every signal just asks to stop
  const stop = (): void => {
    if (!o.training()) {
      console.error(`stopped before a model was training: nothing new to checkpoint (every saved file and checkpoint is kept); ${o.resumeHint}`);
      process.exit(130);
    }
    o.onInterrupt();
  };
  process.on('SIGINT', stop);
  for (const sig of CHECKPOINT_SIGNALS) process.on(sig, stop);
  // the supervisor died (SIGKILL, a closed terminal): checkpoint and stop the same way
  process.on('disconnect', () => {
    say('the supervising process is gone: saving a checkpoint after this step, then stopping');
    stop();
  });
  process.channel?.unref(); // the channel must not keep the worker alive once its work is done
}

function installInProcess(o: SuperviseOptions): void {
  const presses = new PressCounter();
  process.on('SIGINT', () => {
    const n = presses.press();
    if (n === 0) return;
    if (n >= FORCE_PRESSES) {
      say(FORCED);
      process.exit(130);
    }
    if (!o.training()) {
      say(`Ctrl-C: stopped before a model was training (every saved file and checkpoint is kept); ${o.resumeHint}`);
      process.exit(130);
    }
    say(`Ctrl-C: ${n === 1 ? FIRST : AGAIN(FORCE_PRESSES - n)}`);
    o.onInterrupt();
  });
  for (const sig of CHECKPOINT_SIGNALS)
    process.on(sig, () => {
      if (!o.training()) process.exit(130);
      o.onInterrupt();
    });
}

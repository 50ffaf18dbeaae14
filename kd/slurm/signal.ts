// The checkpoint signal of cluster jobs. Slurm sends it ahead of a time limit or a preemption
// (`#SBATCH --signal=B:USR1@secs` to the batch shell, which forwards it to node; or
// `scancel --signal=USR1 --batch`): the training loop then checkpoints after the current step
// and the process exits 130, so a requeue or a resubmission with --resume continues exactly.
// SIGUSR1 would otherwise start Node's inspector; a listener replaces that.

export const CHECKPOINT_SIGNAL = 'SIGUSR1';

/** Installs the handler (train.ts / study.ts main call this next to their SIGINT handler). */
export function onCheckpointSignal(requestInterrupt: () => void, log: (s: string) => void = (s) => console.error(s)): void {
  process.on(CHECKPOINT_SIGNAL, () => {
    log(`\n${CHECKPOINT_SIGNAL}: saving a checkpoint after this step, then exiting (resume with --resume)`);
    requestInterrupt();
  });
}

// The resume checkpoint of one model: its weights, the EMA copy, the optimizer state, extra loss
// state (temporal smoothing) and the loop position, in one safetensors file written atomically
// through the RunStore; the loop position and optimizer hyper-parameters travel as JSON metadata.
import * as rk from '../engine/index.ts';
import { copyIntoModel, type HostTensor, type SafetensorsFile } from '../engine/io/safetensors.ts';
import { checkFinite, modelTensors, toHostTensors, type Module } from './model-file.ts';
import type { RunStore } from './run-store.ts';
import { parseJson } from './data/json.ts';

/** Host-side state a loss keeps across steps (temporal smoothing), saved in checkpoints. */
export interface ExtraState {
  save(): Map<string, HostTensor>;
  load(tensors: Map<string, HostTensor>): void;
}

/** What a checkpoint holds besides tensors: where the loop stands (see fit.ts LoopState). */
export interface CheckpointParts<Loop> {
  model: Module;
  ema: Module | null;
  opt: rk.optim.Optimizer;
  extra?: ExtraState;
  loop: Loop;
  /** model key (teacher-0, student-roskd, ...), stored as metadata */
  name: string;
}

/** Optimizer state for the checkpoint: tensors under optim.<key>, the rest as JSON. */
function optimizerToHost(opt: rk.optim.Optimizer, out: Map<string, HostTensor | rk.Tensor>, owned: rk.Tensor[]): unknown {
  const sd = opt.stateDict();
  for (const [k, t] of sd.tensors) {
    out.set(`optim.${k}`, t);
    owned.push(t);
  }
  return { hyper: sd.hyper, steps: sd.steps, keys: [...sd.tensors.keys()] };
}

function optimizerFromHost(opt: rk.optim.Optimizer, json: { hyper: rk.optim.Hyper; steps: number[]; keys: string[] }, file: SafetensorsFile, source: string): void {
  const tensors = new Map<string, rk.Tensor>();
  try {
    for (const k of json.keys) {
      const t = file.tensors.get(`optim.${k}`);
      if (!t) throw new Error(`${source}: checkpoint lacks optimizer tensor optim.${k}`);
      tensors.set(k, rk.keep(rk.tensor(t.data as Float32Array, t.shape, 'f32')));
    }
    try {
      opt.loadStateDict({ hyper: json.hyper, steps: json.steps, tensors });
    } catch (e) {
      // the usual cause: parameter groups in another order (--norm-bias-decay changed since the checkpoint)
      throw new Error(`${source}: the optimizer state does not fit this run (was it started with other --optimizer or --norm-bias-decay options?): ${(e as Error).message}`);
    }
  } finally {
    for (const t of tensors.values()) t.dispose();
  }
}

function subFile(file: SafetensorsFile, prefix: string): SafetensorsFile {
  const tensors = new Map<string, HostTensor>();
  for (const [n, t] of file.tensors) if (n.startsWith(prefix)) tensors.set(n.slice(prefix.length), t);
  return { tensors, metadata: null };
}

/** Writes the checkpoint atomically (the previous one stays valid until the rename). */
export async function writeCheckpoint<Loop>(run: RunStore, file: string, c: CheckpointParts<Loop>): Promise<void> {
  const t = new Map<string, rk.Tensor | HostTensor>();
  modelTensors(c.model, 'model.', t);
  if (c.ema) modelTensors(c.ema, 'ema.', t);
  const owned: rk.Tensor[] = [];
  try {
    const optJson = optimizerToHost(c.opt, t, owned);
    for (const [k, v] of c.extra?.save() ?? []) t.set(`extra.${k}`, v);
    // the host copy that is written anyway is checked first: a non-finite state is never checkpointed
    const host = await toHostTensors(t);
    checkFinite(host, run.path(file));
    await run.saveTensors(file, host, { roskd_state: JSON.stringify({ loop: c.loop, optim: optJson }), model: c.name });
  } finally {
    for (const x of owned) x.dispose();
  }
}

/** Restores model, EMA, optimizer and extra state from a checkpoint; returns the saved loop position. */
export async function readCheckpoint<Loop>(run: RunStore, file: string, c: Omit<CheckpointParts<Loop>, 'loop' | 'name'>): Promise<Loop> {
  const shown = run.path(file);
  const f = await run.loadTensors(file);
  const meta = parseJson<{ loop: Loop; optim: Parameters<typeof optimizerFromHost>[1] } | null>(f.metadata?.roskd_state ?? 'null', `${shown}: safetensors __metadata__ entry "roskd_state"`);
  if (!meta) throw new Error(`${shown}: not a roskd checkpoint (no roskd_state metadata)`);
  checkFinite(f.tensors, `${shown}: refusing non-finite weights`);
  copyIntoModel(c.model, subFile(f, 'model.'), shown);
  if (c.ema) copyIntoModel(c.ema, subFile(f, 'ema.'), shown);
  optimizerFromHost(c.opt, meta.optim, f, shown);
  c.extra?.load(subFile(f, 'extra.').tensors);
  return meta.loop;
}

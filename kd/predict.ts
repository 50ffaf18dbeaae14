// Classifies PNG/JPEG images with a model saved by kd/train.ts:
//   npx tsx kd/predict.ts --model runs/demo/student-roskd.safetensors img1.png dir/ ... [--json]
// The architecture, its options, the classes, the input size and the normalisation all come
// from the file's safetensors __metadata__ ("roskd" entry), so nothing else is needed.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { extname, join } from 'node:path';
import * as rk from '../engine/index.ts';
import { loadSafetensors, copyIntoModel } from '../engine/io/safetensors.ts';
import { prepareImage } from './data/image.ts';
import { predictLogits, probabilities } from './trainer.ts';
import { buildModel, type ModelMeta } from './train.ts';
import { parseJson } from './data/json.ts';

export interface Prediction {
  file: string;
  /** predicted class (single-label) or the labels with p >= threshold (multi-label) */
  prediction: string | string[];
  confidence: number;
  probabilities: Record<string, number>;
}

export interface PredictResult {
  model: string;
  meta: ModelMeta;
  predictions: Prediction[];
  skipped: { file: string; reason: string }[];
}

const IMAGE_EXT = new Set(['.png', '.jpg', '.jpeg']);

/** Image files named directly or found (recursively, sorted) under named folders. */
export function collectImages(paths: string[]): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (IMAGE_EXT.has(extname(e.name).toLowerCase())) out.push(p);
    }
  };
  for (const p of paths) {
    let st;
    try {
      st = statSync(p);
    } catch {
      throw new Error(`${p}: no such file or folder`);
    }
    if (st.isDirectory()) walk(p);
    else out.push(p);
  }
  return out;
}

/** Reads the model description stored by kd/train.ts in the file's metadata. */
export function readModelMeta(metadata: Record<string, string> | null, path: string): ModelMeta {
  const raw = metadata?.roskd;
  if (!raw) throw new Error(`${path}: no "roskd" entry in the safetensors __metadata__ (was it saved by kd/train.ts?); cannot tell the architecture, classes or normalisation`);
  const m = parseJson<ModelMeta>(raw, `${path}: safetensors __metadata__ entry "roskd"`);
  if (m.format !== 'roskd-model' || !m.arch || !Array.isArray(m.classes)) throw new Error(`${path}: unrecognised roskd metadata (format ${JSON.stringify(m.format)})`);
  return m;
}

export async function predictFiles(modelPath: string, inputs: string[], opts: { onBadImage?: 'skip' | 'fail'; batchSize?: number; threshold?: number } = {}): Promise<PredictResult> {
  await rk.init();
  const file = await loadSafetensors(modelPath);
  const meta = readModelMeta(file.metadata, modelPath);
  const files = collectImages(inputs);
  if (files.length === 0) throw new Error(`no PNG/JPEG images among ${inputs.join(', ')}`);
  const px = meta.channels * meta.height * meta.width;
  const images: Uint8Array[] = [];
  const good: string[] = [];
  const skipped: PredictResult['skipped'] = [];
  for (const f of files) {
    try {
      images.push(prepareImage(readFileSync(f), f, { height: meta.height, width: meta.width, channels: meta.channels as 1 | 3, fit: 'cover' }));
      good.push(f);
    } catch (e) {
      const msg = (e as Error).message;
      const reason = msg.startsWith(`${f}: `) ? msg.slice(f.length + 2) : msg;
      if ((opts.onBadImage ?? 'fail') === 'fail') throw new Error(`unreadable image ${f}: ${reason} (use --on-bad-image skip to go on without it)`);
      skipped.push({ file: f, reason });
    }
  }
  const model = buildModel(meta, 0);
  try {
    copyIntoModel(model, file, modelPath);
    const all = new Uint8Array(good.length * px);
    images.forEach((im, i) => all.set(im, i * px));
    const C = meta.classes.length;
    const predictions: Prediction[] = [];
    if (good.length) {
      const { logits } = await predictLogits(model, meta, { images: all, n: good.length }, { batchSize: opts.batchSize ?? 64 });
      const multilabel = meta.task === 'multilabel';
      const p = probabilities(logits, C, multilabel);
      const thr = opts.threshold ?? 0.5;
      good.forEach((f, i) => {
        const row = Array.from(p.subarray(i * C, (i + 1) * C));
        const top = row.indexOf(Math.max(...row));
        const probs = Object.fromEntries(meta.classes.map((c, k) => [c, row[k]]));
        const prediction = multilabel ? meta.classes.filter((_, k) => row[k] >= thr) : meta.classes[top];
        predictions.push({ file: f, prediction, confidence: row[top], probabilities: probs });
      });
    }
    return { model: modelPath, meta, predictions, skipped };
  } finally {
    model.dispose();
  }
}

export function formatTable(r: PredictResult): string {
  const cls = r.meta.classes;
  const head = ['file', 'prediction', ...cls.map((c) => `p(${c})`)];
  const body = r.predictions.map((p) => [p.file, Array.isArray(p.prediction) ? p.prediction.join('+') || '(none)' : p.prediction, ...cls.map((c) => p.probabilities[c].toFixed(3))]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => (i < 2 ? c.padEnd(w[i]) : c.padStart(w[i]))).join('  ');
  const out = [line(head), ...body.map(line)];
  for (const s of r.skipped) out.push(`skipped ${s.file}: ${s.reason}`);
  return out.join('\n');
}

const HELP = `usage: npx tsx kd/predict.ts --model RUN/student-roskd.safetensors IMAGES_OR_FOLDERS... [options]

Classifies PNG/JPEG images (folders are searched recursively) with a model saved by kd/train.ts;
architecture, classes, input size and normalisation are read from the file's metadata.

  --model FILE           weights saved by kd/train.ts (teacher-<i>.safetensors or student-<method>.safetensors)
  --json                 print JSON instead of a table
  --on-bad-image skip|fail   unreadable image: stop naming it (default fail) or skip and list it
  --threshold P          multi-label models: report labels with probability >= P (default 0.5)
  --batch-size N         images per forward pass (default 64)
  --help                 this text`;

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  let model = '';
  let json = false;
  let onBadImage: 'skip' | 'fail' = 'fail';
  let threshold = 0.5;
  let batchSize = 64;
  const inputs: string[] = [];
  try {
    for (let i = 0; i < argv.length; i++) {
      const a = argv[i];
      const val = (): string => {
        if (i + 1 >= argv.length) throw new Error(`${a} needs a value`);
        return argv[++i];
      };
      if (a === '--help' || a === '-h') {
        console.log(HELP);
        return;
      } else if (a === '--model') model = val();
      else if (a === '--json') json = true;
      else if (a === '--on-bad-image') {
        const v = val();
        if (v !== 'skip' && v !== 'fail') throw new Error(`--on-bad-image: expected skip or fail, got ${v}`);
        onBadImage = v;
      } else if (a === '--threshold') threshold = Number(val());
      else if (a === '--batch-size') batchSize = Math.max(1, Number(val()) | 0);
      else if (a.startsWith('--')) throw new Error(`unknown option ${a} (see --help)`);
      else inputs.push(a);
    }
    if (!model) throw new Error('--model FILE is required (see --help)');
    if (inputs.length === 0) throw new Error('give at least one image or folder (see --help)');
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    process.exit(2);
  }
  try {
    const r = await predictFiles(model, inputs, { onBadImage, threshold, batchSize });
    if (json) console.log(JSON.stringify({ model: r.model, arch: r.meta.arch, classes: r.meta.classes, predictions: r.predictions, skipped: r.skipped }, null, 2));
    else console.log(formatTable(r));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    process.exit(1);
  }
}

if (process.argv[1]?.endsWith('kd/predict.ts')) void main();

// Classifies PNG/JPEG images with a model saved by kd/train.ts, draws Grad-CAM maps, or scores the
// model against labelled images:
//   npx tsx kd/predict.ts --model runs/demo/student-roskd.safetensors img1.png dir/ ... [--json] [--cam DIR]
//   npx tsx kd/predict.ts --model runs/demo/student-roskd.safetensors --labels test.npz|labels.csv|folder/
// (the work is kd/classify.ts, kd/cam.ts and kd/evaluate-labels.ts; this file parses and prints).
import { writeFileSync } from 'node:fs';
import { quietDawnWarnings } from '../engine/node/dawn-stderr.ts';
import { parseCommandLine, parseFlags, UsageError, type OptionSpec } from './cli.ts';
import { predictFiles, formatTable } from './classify.ts';
import { evaluateModelFile } from './evaluate-labels.ts';
import { evaluationJson, formatEvaluation } from './evaluation.ts';
import type { SplitName } from './data/dataset.ts';

const HELP = `usage: npx tsx kd/predict.ts --model RUN/student-roskd.safetensors IMAGES_OR_FOLDERS... [options]
       npx tsx kd/predict.ts --model RUN/student-roskd.safetensors --labels SOURCE [--json] [--out FILE]

Classifies PNG/JPEG images (folders are searched recursively) with a model saved by kd/train.ts;
architecture, classes, input size and normalisation are read from the file's metadata.

Grad-CAM (where the model looked):
  --cam DIR              also write, per image, DIR/<name>.cam.png (heat map over the image, colour
                         bar) and DIR/<name>.cam.npy (the raw map, float32 [h, w], not normalised)
  --cam-class NAME|INDEX explain this class (default: each image's predicted class)
  --cam-layer NAME       target layer by PyTorch module name (default: the last convolutional stage:
                         layer4 for resnets, features.norm5 densenet121, features.18 mobilenet_v2)

Evaluation against labels (no image arguments):
  --labels SOURCE        file.npz (MedMNIST layout: <split>_images/<split>_labels), file.csv
                         (columns image,label; paths relative to the CSV; multi-label: names joined
                         by |), or a folder ROOT/<class>/* (or ROOT/<split>/<class>/*); prints
                         accuracy, macro-F1, AUC, ECE (15 bins), Brier score, a per-class table
                         and the confusion matrix; refuses a model whose classes differ
  --split train|val|test which split of an npz or split folder (default test)
  --out FILE             also write the evaluation as JSON to FILE

  --model FILE           weights saved by kd/train.ts (teacher-<i>.safetensors or student-<method>.safetensors)
  --json                 print JSON instead of a table
  --on-bad-image skip|fail   unreadable image: stop naming it (default fail) or skip and list it
  --threshold P          multi-label models: report labels with probability >= P (default 0.5)
  --batch-size N         images per forward pass (default 64)
  --help                 this text`;

interface PredictCli {
  model: string;
  json: boolean;
  onBadImage: 'skip' | 'fail';
  threshold: number;
  batchSize: number;
  cam: string;
  camClass: string;
  camLayer: string;
  labels: string;
  split: SplitName;
  out: string;
}

const OPTIONS: OptionSpec<keyof PredictCli>[] = [
  { key: 'model', flag: 'model', kind: 'string' },
  { key: 'json', flag: 'json', kind: 'bool' },
  { key: 'onBadImage', flag: 'on-bad-image', kind: 'string', choices: ['skip', 'fail'] },
  { key: 'threshold', flag: 'threshold', kind: 'number', min: 0, max: 1 },
  { key: 'batchSize', flag: 'batch-size', kind: 'int', min: 1 },
  { key: 'cam', flag: 'cam', kind: 'string' },
  { key: 'camClass', flag: 'cam-class', kind: 'string' },
  { key: 'camLayer', flag: 'cam-layer', kind: 'string' },
  { key: 'labels', flag: 'labels', kind: 'string' },
  { key: 'split', flag: 'split', kind: 'string', choices: ['train', 'val', 'test'] },
  { key: 'out', flag: 'out', kind: 'string' },
];

/** The options and the image/folder arguments; UsageError on anything wrong. */
export function parsePredictArgs(argv: readonly string[]): PredictCli & { inputs: string[]; help: boolean } {
  const p = parseFlags(argv, OPTIONS, { words: 'positional' });
  const o: PredictCli = { model: '', json: false, onBadImage: 'fail', threshold: 0.5, batchSize: 64, cam: '', camClass: '', camLayer: '', labels: '', split: 'test', out: '', ...(Object.fromEntries(p.values) as Partial<PredictCli>) };
  if (!p.help) {
    if (!o.model) throw new UsageError('--model FILE is required (see --help)');
    if (o.labels) {
      if (p.positional.length) throw new UsageError(`--labels scores the images of ${o.labels}; drop the image arguments (${p.positional.join(' ')})`);
      if (o.cam) throw new UsageError('--cam draws maps for image arguments; it cannot be combined with --labels');
    } else {
      if (p.positional.length === 0) throw new UsageError('give at least one image or folder, or --labels SOURCE (see --help)');
      if (o.out) throw new UsageError('--out writes the --labels evaluation; use --json to get predictions as JSON');
    }
    if ((o.camClass || o.camLayer) && !o.cam) throw new UsageError('--cam-class and --cam-layer need --cam DIR');
  }
  return { ...o, inputs: p.positional, help: p.help };
}

async function main(): Promise<void> {
  const o = parseCommandLine(parsePredictArgs, (x) => x.help, () => HELP);
  if (!o) return;
  await quietDawnWarnings(); // Dawn's two start-up warnings only with ROSKD_VERBOSE=1
  try {
    if (o.labels) {
      const r = await evaluateModelFile(o.model, o.labels, { split: o.split, onBadImage: o.onBadImage, batchSize: o.batchSize });
      const json = evaluationJson(r.evaluation, { model: r.model, arch: r.meta.arch, labels: r.labels, split: r.split, skipped: r.skipped });
      if (o.out) writeFileSync(o.out, json + '\n');
      console.log(o.json ? json : formatEvaluation(r.evaluation, `${r.model} (${r.meta.arch}) on ${r.labels}${r.split ? ` [${r.split}]` : ''}`) + (r.skipped.length ? `\nskipped ${r.skipped.length} unreadable image(s)` : ''));
      return;
    }
    const cam = o.cam ? { dir: o.cam, layer: o.camLayer || undefined, className: o.camClass || undefined } : undefined;
    const r = await predictFiles(o.model, o.inputs, { onBadImage: o.onBadImage, threshold: o.threshold, batchSize: o.batchSize, cam });
    if (o.json) console.log(JSON.stringify({ model: r.model, arch: r.meta.arch, classes: r.meta.classes, predictions: r.predictions, skipped: r.skipped }, null, 2));
    else console.log(formatTable(r));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    process.exit(1);
  }
}

if (process.argv[1]?.endsWith('kd/predict.ts')) void main();

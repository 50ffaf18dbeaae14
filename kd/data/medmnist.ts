// MedMNIST 2D sets: names, classes and checksums, and a Dataset assembled from the arrays of a
// MedMNIST-style npz. No file access and no node:* import (finding, downloading and reading the
// files: medmnist-files.ts).
import { type Dataset, type Split, type SplitName, type Task, SPLIT_NAMES, makeDataset } from './dataset.ts';
import { checkClassesInTrain, checkLabelRange, inferClassCount } from './labels.ts';
import { resize } from './image.ts';
import type { NpyArray } from './npy.ts';

export interface MedMNISTInfo {
  classes: string[];
  /** As MedMNIST's info.py says; ordinal regression (retinamnist) is treated as multiclass. */
  task: Task;
  channels: number;
  /** MD5 of the official v3 (Zenodo record 10519652) files by image size. */
  md5: Record<number, string>;
}

const ORGAN = ['bladder', 'femur-left', 'femur-right', 'heart', 'kidney-left', 'kidney-right', 'liver', 'lung-left', 'lung-right', 'pancreas', 'spleen'];

/** The 2D MedMNIST sets (class names and checksums copied from MedMNIST's info.py). */
export const MEDMNIST_INFO: Record<string, MedMNISTInfo> = {
  pathmnist: {
    classes: ['adipose', 'background', 'debris', 'lymphocytes', 'mucus', 'smooth muscle', 'normal colon mucosa', 'cancer-associated stroma', 'colorectal adenocarcinoma epithelium'],
    task: 'multiclass', channels: 3,
    md5: { 28: 'a8b06965200029087d5bd730944a56c1', 64: '55aa9c1e0525abe5a6b9d8343a507616', 128: 'ac42d08fb904d92c244187169d1fd1d9', 224: '2c51a510bcdc9cf8ddb2af93af1eadec' },
  },
  chestmnist: {
    classes: ['atelectasis', 'cardiomegaly', 'effusion', 'infiltration', 'mass', 'nodule', 'pneumonia', 'pneumothorax', 'consolidation', 'edema', 'emphysema', 'fibrosis', 'pleural', 'hernia'],
    task: 'multilabel', channels: 1,
    md5: { 28: '02c8a6516a18b556561a56cbdd36c4a8', 64: '9de6cd0b934ebb5b7426cfba5efbae16', 128: 'db107e5590b27930b62dbaf558aebee3', 224: '45bd33e6f06c3e8cdb481c74a89152aa' },
  },
  dermamnist: {
    classes: ['actinic keratoses and intraepithelial carcinoma', 'basal cell carcinoma', 'benign keratosis-like lesions', 'dermatofibroma', 'melanoma', 'melanocytic nevi', 'vascular lesions'],
    task: 'multiclass', channels: 3,
    md5: { 28: '0744692d530f8e62ec473284d019b0c7', 64: 'b70a2f5635c6199aeaa28c31d7202e1f', 128: '2defd784463fa5243564e855ed717de1', 224: '8974907d8e169bef5f5b96bc506ae45d' },
  },
  octmnist: {
    classes: ['choroidal neovascularization', 'diabetic macular edema', 'drusen', 'normal'],
    task: 'multiclass', channels: 1,
    md5: { 28: 'c68d92d5b585d8d81f7112f81e2d0842', 64: 'e229e9440236b774d9f0dfef9d07bdaf', 128: '0a97e76651ace45c5d943ee3f65b63ae', 224: 'abc493b6d529d5de7569faaef2773ba3' },
  },
  pneumoniamnist: {
    classes: ['normal', 'pneumonia'],
    task: 'binary', channels: 1,
    md5: { 28: '28209eda62fecd6e6a2d98b1501bb15f', 64: '8f4eceb4ccffa70c672198ea285246c6', 128: '05b46931834c231683c68f40c47b2971', 224: 'd6a3c71de1b945ea11211b03746c1fe1' },
  },
  retinamnist: {
    classes: ['0', '1', '2', '3', '4'],
    task: 'multiclass', channels: 3,
    md5: { 28: 'bd4c0672f1bba3e3a89f0e4e876791e4', 64: 'afda852cc34dcda56f86ad2b2457dbcc', 128: 'e48e916a24454daf90583d4e6efb1a18', 224: 'eae7e3b6f3fcbda4ae613ebdcbe35348' },
  },
  breastmnist: {
    classes: ['malignant', 'normal, benign'],
    task: 'binary', channels: 1,
    md5: { 28: '750601b1f35ba3300ea97c75c52ff8f6', 64: '742edef2a1fd1524b2efff4bd7ba9364', 128: '363e4b3f8d712e9b5de15470a2aaadf1', 224: 'b56378a6eefa9fed602bb16d192d4c8b' },
  },
  bloodmnist: {
    classes: ['basophil', 'eosinophil', 'erythroblast', 'immature granulocytes(myelocytes, metamyelocytes and promyelocytes)', 'lymphocyte', 'monocyte', 'neutrophil', 'platelet'],
    task: 'multiclass', channels: 3,
    md5: { 28: '7053d0359d879ad8a5505303e11de1dc', 64: '2b94928a2ae4916078ca51e05b6b800b', 128: 'adace1e0ed228fccda1f39692059dd4c', 224: 'b718ff6835fcbdb22ba9eacccd7b2601' },
  },
  tissuemnist: {
    classes: ['Collecting Duct, Connecting Tubule', 'Distal Convoluted Tubule', 'Glomerular endothelial cells', 'Interstitial endothelial cells', 'Leukocytes', 'Podocytes', 'Proximal Tubule Segments', 'Thick Ascending Limb'],
    task: 'multiclass', channels: 1,
    md5: { 28: 'ebe78ee8b05294063de985d821c1c34b', 64: '123ece2eba09d0aa5d698fda57103344', 128: '61b955355d7425a89687b06cca3ce0c2', 224: 'b077128c4a949f0a4eb01517f9037b9c' },
  },
  organamnist: {
    classes: ORGAN, task: 'multiclass', channels: 1,
    md5: { 28: '68e3f8846a6bd62f0c9bf841c0d9eacc', 64: '2dcccc29b88e6da5a01161ef20cda288', 128: 'eeae80d0a227a8d099027e1b3cfd3b60', 224: '50747347e05c87dd3aaf92c49f9f3170' },
  },
  organcmnist: {
    classes: ORGAN, task: 'multiclass', channels: 1,
    md5: { 28: 'b9ceb9546e10131b32923c5bbeaea2b1', 64: '3ce34a8724ea6f548e6db4744d03b6a9', 128: '773c1f009daa3fe5d9a2a201b2a7ed94', 224: '050f5e875dc056f6768abf94ec9995d1' },
  },
  organsmnist: {
    classes: ORGAN, task: 'multiclass', channels: 1,
    md5: { 28: '9ab87b696fb54e2a387ebe992d6ed5f1', 64: '53a6d115339d874c25e309a994ff46d3', 128: 'ded0c5fa01a95dc4978b956f613e9b8e', 224: 'b354719e553fbbb2513d5533f52a4cb1' },
  },
};

/** Image sizes published for the 2D sets. */
export const MEDMNIST_SIZES = [28, 64, 128, 224] as const;

/** Smallest official size >= wanted (shrinking later beats enlarging), else the largest. */
export function medmnistSourceSize(wanted: number | undefined): number {
  if (wanted === undefined) return 28;
  for (const s of MEDMNIST_SIZES) if (s >= wanted) return s;
  return 224;
}

function toUint8Images(a: NpyArray, where: string): Uint8Array {
  if (a.data instanceof Uint8Array) return a.data;
  // Rare non-uint8 exports: floats in [0,1] are scaled, everything is clamped to 0..255.
  let max = 0;
  for (let i = 0; i < a.data.length; i++) max = Math.max(max, Number(a.data[i]));
  const scale = (a.dtype === '<f4' || a.dtype === '<f8') && max <= 1 ? 255 : 1;
  const out = new Uint8Array(a.data.length);
  for (let i = 0; i < a.data.length; i++) out[i] = Math.max(0, Math.min(255, Math.round(Number(a.data[i]) * scale)));
  if (!Number.isFinite(max)) throw new Error(`${where}: non-finite pixel values`);
  return out;
}

function toNumberArray(a: NpyArray): Float64Array {
  const out = new Float64Array(a.data.length);
  for (let i = 0; i < a.data.length; i++) out[i] = Number(a.data[i]);
  return out;
}

/**
 * Build a Dataset from the arrays of a MedMNIST-style npz: {train,val,test}_{images,labels}.
 * Images (N,H,W) or (N,H,W,C) -> NCHW uint8. Labels (N,1) -> single-label; (N,L>1) -> multilabel.
 */
export function medmnistFromArrays(arrays: Map<string, NpyArray>, name: string, file = name, opts: { size?: number } = {}): Dataset {
  const info = MEDMNIST_INFO[name.toLowerCase()];
  const get = (k: string) => {
    const a = arrays.get(k);
    if (!a) throw new Error(`${file}: missing member ${k}.npy (have: ${[...arrays.keys()].join(', ') || 'none'})`);
    return a;
  };
  let channels = 0;
  let height = 0;
  let width = 0;
  let labelWidth = 0;
  const raw: Record<string, { images: Uint8Array; labels: Float64Array; n: number }> = {};
  for (const sp of ['train', 'val', 'test']) {
    const im = get(`${sp}_images`);
    const lb = get(`${sp}_labels`);
    const where = `${file}: member ${sp}_images.npy`;
    let n: number, h: number, w: number, c: number;
    if (im.shape.length === 3) [n, h, w, c] = [im.shape[0], im.shape[1], im.shape[2], 1];
    else if (im.shape.length === 4 && (im.shape[3] === 1 || im.shape[3] === 3)) [n, h, w, c] = im.shape as [number, number, number, number];
    else throw new Error(`${where}: shape ${JSON.stringify(im.shape)} is not (N,H,W) or (N,H,W,1|3) (3D volumes are not supported)`);
    if (sp === 'train') [channels, height, width] = [c, h, w];
    else if (c !== channels || h !== height || w !== width)
      throw new Error(`${where}: image shape ${c}x${h}x${w} differs from train ${channels}x${height}x${width}`);
    const lw = lb.shape.length === 1 ? 1 : lb.shape.length === 2 ? lb.shape[1] : -1;
    if (lw < 1 || lb.shape[0] !== n)
      throw new Error(`${file}: member ${sp}_labels.npy has shape ${JSON.stringify(lb.shape)}, expected (${n},) or (${n}, L)`);
    if (sp === 'train') labelWidth = lw;
    else if (lw !== labelWidth) throw new Error(`${file}: ${sp}_labels has ${lw} columns, train has ${labelWidth}`);
    let px = toUint8Images(im, where);
    if (c > 1) {
      // HWC -> CHW per image.
      const hw = h * w;
      const out = new Uint8Array(px.length);
      for (let i = 0; i < n; i++) {
        const base = i * hw * c;
        for (let p = 0; p < hw; p++) for (let k = 0; k < c; k++) out[base + k * hw + p] = px[base + p * c + k];
      }
      px = out;
    }
    raw[sp] = { images: px, labels: toNumberArray(lb), n };
  }
  // Task and classes: the table's when the name is known (labels must fit it), else inferred from
  // train. Every label is checked, so a stray value is an error, not a new class.
  const rowName = (sp: SplitName, i: number) => `${file}: member ${sp}_labels.npy row ${i}`;
  const labelsOf = { train: raw.train.labels, val: raw.val.labels, test: raw.test.labels };
  let task: Task;
  let classes: string[];
  if (info && (info.task === 'multilabel') !== labelWidth > 1)
    throw new Error(`${file}: ${name} is ${info.task}, but its labels have ${labelWidth} column(s) (expected ${info.task === 'multilabel' ? info.classes.length : 1})`);
  if (labelWidth > 1) {
    task = 'multilabel';
    if (info && info.classes.length !== labelWidth) throw new Error(`${file}: member train_labels.npy has ${labelWidth} columns, ${name} has ${info.classes.length} labels`);
    classes = info ? info.classes : Array.from({ length: labelWidth }, (_, k) => `label_${k}`);
    for (const sp of SPLIT_NAMES) {
      const lab = labelsOf[sp];
      for (let i = 0; i < lab.length; i++)
        if (lab[i] !== 0 && lab[i] !== 1) throw new Error(`${rowName(sp, Math.floor(i / labelWidth))}: multilabel labels must be 0/1, found ${lab[i]} in column ${i % labelWidth}`);
    }
  } else {
    let C: number;
    if (info) {
      C = info.classes.length;
      for (const sp of SPLIT_NAMES) checkLabelRange(labelsOf[sp], sp, C, rowName, `the ${C} classes of ${name}`);
    } else {
      C = inferClassCount(labelsOf.train, rowName);
      for (const sp of ['val', 'test'] as const) checkLabelRange(labelsOf[sp], sp, Math.max(C, 1), rowName, `the ${C} classes found in train`);
    }
    classes = info ? info.classes : Array.from({ length: C }, (_, k) => `class_${k}`);
    checkClassesInTrain(labelsOf, C, rowName, (k) => classes[k] ?? `class_${k}`);
    const distinct = new Set<number>(labelsOf.train);
    task = C <= 2 && distinct.size <= 2 ? 'binary' : 'multiclass';
    if (C === 1) classes = ['class_0', 'class_1']; // degenerate file: keep a binary head
  }
  const target = opts.size;
  const outH = target ?? height;
  const outW = target ?? width;
  const mk = (sp: { images: Uint8Array; labels: Float64Array; n: number }): Split => {
    let images = sp.images;
    if (outH !== height || outW !== width) {
      const src = channels * height * width;
      const dst = channels * outH * outW;
      const out = new Uint8Array(sp.n * dst);
      for (let i = 0; i < sp.n; i++) out.set(resize(images.subarray(i * src, (i + 1) * src), channels, height, width, outH, outW), i * dst);
      images = out;
    }
    const labels = task === 'multilabel' ? Uint8Array.from(sp.labels) : Int32Array.from(sp.labels);
    return { images, labels, n: sp.n };
  };
  return makeDataset(
    { name: name.toLowerCase(), task, classes, channels, height: outH, width: outW },
    { train: mk(raw.train), val: mk(raw.val), test: mk(raw.test) },
  );
}


// NIH ChestX-ray14: Data_Entry_2017.csv (14 findings, multi-label), images in any sub-folder,
// optional official train_val_list.txt / test_list.txt; grouped by patient.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { requireColumn } from './csv.ts';
import { applyLimit, buildImageSet, dirList, type FolderLoadOptions, type Item, type LoadedDataset } from './image-set.ts';
import { indexImages, readCsv, readLines } from './node-files.ts';

/** The 14 NIH findings, in the order used by the paper and by ChestMNIST. */
export const CHESTXRAY14_FINDINGS = [
  'Atelectasis', 'Cardiomegaly', 'Effusion', 'Infiltration', 'Mass', 'Nodule', 'Pneumonia',
  'Pneumothorax', 'Consolidation', 'Edema', 'Emphysema', 'Fibrosis', 'Pleural_Thickening', 'Hernia',
];

export interface ChestXray14Options extends FolderLoadOptions {
  /** Folder with Data_Entry_2017.csv (and images/, train_val_list.txt, test_list.txt). */
  root?: string;
  /** Explicit metadata CSV (default <root>/Data_Entry_2017.csv or Data_Entry_2017_v2020.csv). */
  csv?: string;
  /** Image folder(s), searched recursively (default <root>). */
  imageDir?: string | string[];
  /** Official lists; default <root>/train_val_list.txt and test_list.txt when present; false = ignore. */
  trainValList?: string | false;
  testList?: string | false;
}

export async function loadChestXray14(opts: ChestXray14Options): Promise<LoadedDataset> {
  const root = opts.root ?? (opts.csv ? dirname(opts.csv) : undefined);
  if (!root) throw new Error('loadChestXray14: give root (folder with Data_Entry_2017.csv) or csv');
  const csvPath =
    opts.csv ?? [join(root, 'Data_Entry_2017.csv'), join(root, 'Data_Entry_2017_v2020.csv')].find((p) => existsSync(p)) ?? join(root, 'Data_Entry_2017.csv');
  const csv = readCsv(csvPath);
  const cImg = requireColumn(csv, 'Image Index');
  const cLab = requireColumn(csv, 'Finding Labels');
  const cPat = requireColumn(csv, 'Patient ID');
  const pick = (v: string | false | undefined, def: string) => (v === false ? undefined : v ?? (existsSync(def) ? def : undefined));
  const tvPath = pick(opts.trainValList, join(root, 'train_val_list.txt'));
  const testPath = pick(opts.testList, join(root, 'test_list.txt'));
  const trainVal = tvPath ? readLines(tvPath) : undefined;
  const test = testPath ? readLines(testPath) : undefined;
  const L = CHESTXRAY14_FINDINGS.length;
  const findIdx = new Map(CHESTXRAY14_FINDINGS.map((f, k) => [f.toLowerCase(), k]));
  findIdx.set('pleural thickening', 12);
  const items: Item[] = [];
  let unassigned = 0;
  const rows = applyLimit(csv.rows.map((r, k) => [r, csv.lines[k]] as const), opts.limit);
  for (const [r, line] of rows) {
    const id = (r[cImg] ?? '').trim();
    if (!id) continue;
    const label = new Uint8Array(L);
    for (const f of (r[cLab] ?? '').split('|')) {
      const name = f.trim();
      if (!name || name === 'No Finding') continue;
      const k = findIdx.get(name.toLowerCase());
      if (k === undefined) throw new Error(`${csvPath}:${line}: unknown finding ${JSON.stringify(name)} in column "Finding Labels" (known: ${CHESTXRAY14_FINDINGS.join(', ')}, No Finding)`);
      label[k] = 1;
    }
    let split: Item['split'];
    if (trainVal || test) {
      if (test?.has(id)) split = 'test';
      else if (trainVal?.has(id)) split = 'trainval';
      else if (!trainVal) split = 'trainval'; // only a test list given: everything else is train/val
      else {
        unassigned++;
        continue;
      }
    }
    items.push({ id, label, group: `patient:${(r[cPat] ?? '').trim() || id}`, split });
  }
  const dirs = dirList(opts.imageDir, [root]);
  return buildImageSet(
    {
      kind: 'chestxray14',
      name: 'chestxray14',
      task: 'multilabel',
      classes: CHESTXRAY14_FINDINGS,
      items,
      locate: () => indexImages(dirs),
      keyFiles: [csvPath, ...dirs],
      source: csvPath,
      defaultChannels: 1,
      unassigned,
    },
    opts,
  );
}


// HAM10000: HAM10000_metadata.csv (image_id, dx, lesion_id); images in any sub-folder of the CSV's
// folder; grouped by lesion.
import { dirname } from 'node:path';
import { requireColumn, findColumn } from './csv.ts';
import { applyLimit, buildImageSet, dirList, type FolderLoadOptions, type Item, type LoadedDataset } from './image-set.ts';
import { indexImages, readCsv } from './node-files.ts';

/** HAM10000 diagnosis codes (alphabetical, the common convention). */
export const HAM10000_CLASSES = ['akiec', 'bcc', 'bkl', 'df', 'mel', 'nv', 'vasc'];

export interface Ham10000Options extends FolderLoadOptions {
  /** HAM10000_metadata.csv: image_id, dx, lesion_id. */
  csv: string;
  /** Default: folder of the CSV (recursive; finds HAM10000_images_part_1/2). */
  imageDir?: string | string[];
}

export async function loadHam10000(opts: Ham10000Options): Promise<LoadedDataset> {
  const csv = readCsv(opts.csv);
  const cImg = requireColumn(csv, 'image_id');
  const cDx = requireColumn(csv, 'dx');
  const cLes = findColumn(csv, 'lesion_id');
  const items: Item[] = [];
  const rows = applyLimit(csv.rows.map((r, k) => [r, csv.lines[k]] as const), opts.limit);
  for (const [r, line] of rows) {
    const id = (r[cImg] ?? '').trim();
    if (!id) continue;
    const dx = (r[cDx] ?? '').trim().toLowerCase();
    const label = HAM10000_CLASSES.indexOf(dx);
    if (label < 0) throw new Error(`${opts.csv}:${line}: unknown dx ${JSON.stringify(dx)} in column "dx" (known: ${HAM10000_CLASSES.join(', ')})`);
    const les = cLes >= 0 ? (r[cLes] ?? '').trim() : '';
    items.push({ id, label, group: les ? `lesion:${les}` : `image:${id}` });
  }
  const dirs = dirList(opts.imageDir, [dirname(opts.csv)]);
  return buildImageSet(
    {
      kind: 'ham10000',
      name: 'ham10000',
      task: 'multiclass',
      classes: HAM10000_CLASSES,
      items,
      locate: () => indexImages(dirs),
      keyFiles: [opts.csv, ...dirs],
      source: opts.csv,
      defaultChannels: 3,
    },
    opts,
  );
}


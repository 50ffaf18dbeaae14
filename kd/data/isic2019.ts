// ISIC 2019: ISIC_2019_Training_GroundTruth.csv (image + one-hot classes), optional metadata CSV
// for lesion grouping; images in any sub-folder of the CSV's folder.
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { requireColumn } from './csv.ts';
import { applyLimit, buildImageSet, dirList, type FolderLoadOptions, type Item, type LoadedDataset } from './image-set.ts';
import { indexImages, readCsv } from './node-files.ts';

export interface Isic2019Options extends FolderLoadOptions {
  /** ISIC_2019_Training_GroundTruth.csv: `image` + one-hot class columns. */
  csv: string;
  /** Default: folder of the CSV (searched recursively, e.g. ISIC_2019_Training_Input/). */
  imageDir?: string | string[];
  /** ISIC_2019_Training_Metadata.csv for lesion_id grouping; default next to csv when present; false = no grouping. */
  metadataCsv?: string | false;
}

export async function loadIsic2019(opts: Isic2019Options): Promise<LoadedDataset> {
  const csv = readCsv(opts.csv);
  const cImg = requireColumn(csv, 'image');
  const classCols = csv.header.map((h, k) => [h.trim(), k] as const).filter(([h, k]) => k !== cImg && h !== '');
  if (classCols.length < 2) throw new Error(`${opts.csv}: expected one-hot class columns after "image" (e.g. MEL,NV,BCC,...), found ${classCols.length}`);
  const classes = classCols.map(([h]) => h);
  const metaPath =
    opts.metadataCsv === false ? undefined : opts.metadataCsv ?? [join(dirname(opts.csv), 'ISIC_2019_Training_Metadata.csv')].find((p) => existsSync(p));
  const lesion = new Map<string, string>();
  if (metaPath) {
    const meta = readCsv(metaPath);
    const mi = requireColumn(meta, 'image');
    const ml = requireColumn(meta, 'lesion_id');
    for (const r of meta.rows) if (r[ml]?.trim()) lesion.set(r[mi].trim(), r[ml].trim());
  }
  const items: Item[] = [];
  const rows = applyLimit(csv.rows.map((r, k) => [r, csv.lines[k]] as const), opts.limit);
  for (const [r, line] of rows) {
    const id = (r[cImg] ?? '').trim();
    if (!id) continue;
    let label = -1;
    for (let c = 0; c < classCols.length; c++) {
      const raw = (r[classCols[c][1]] ?? '').trim();
      const v = Number(raw);
      if (raw === '' || !Number.isFinite(v)) throw new Error(`${opts.csv}:${line}: column "${classCols[c][0]}" has non-numeric value ${JSON.stringify(raw)}`);
      if (v >= 0.5) {
        if (label >= 0) throw new Error(`${opts.csv}:${line}: image ${id} is marked as both ${classes[label]} and ${classes[c]} (expected one-hot)`);
        label = c;
      }
    }
    if (label < 0) throw new Error(`${opts.csv}:${line}: image ${id} has no class set (expected one-hot over ${classes.join(',')})`);
    const les = lesion.get(id);
    items.push({ id, label, group: les ? `lesion:${les}` : `image:${id}` });
  }
  const dirs = dirList(opts.imageDir, [dirname(opts.csv)]);
  return buildImageSet(
    {
      kind: 'isic2019',
      name: 'isic2019',
      task: classes.length === 2 ? 'binary' : 'multiclass',
      classes,
      items,
      locate: () => indexImages(dirs),
      keyFiles: [opts.csv, ...dirs, ...(metaPath ? [metaPath] : [])],
      source: opts.csv,
      defaultChannels: 3,
    },
    opts,
  );
}


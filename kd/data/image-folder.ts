// Plain class folders: root/<class>/*.png|jpg, or root/{train,val,test}/<class>/* for an official
// split.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import type { SplitName } from './dataset.ts';
import { applyLimit, buildImageSet, type FolderLoadOptions, type Item, type LoadedDataset } from './image-set.ts';
import { listImages, subdirs } from './node-files.ts';

export interface ImageFolderOptions extends FolderLoadOptions {
  /** root/<class>/*.png|jpg, or root/{train,val,test}/<class>/* for an official split. */
  root: string;
  name?: string;
}

export async function loadImageFolder(opts: ImageFolderOptions): Promise<LoadedDataset> {
  const top = subdirs(opts.root);
  const splitDirs = top.filter((d) => ['train', 'val', 'valid', 'validation', 'test'].includes(d.toLowerCase()));
  const official = splitDirs.some((d) => d.toLowerCase() === 'train');
  const splitOf = (d: string): SplitName => (d.toLowerCase() === 'train' ? 'train' : d.toLowerCase() === 'test' ? 'test' : 'val');
  const bases = official ? splitDirs.map((d) => [join(opts.root, d), splitOf(d)] as const) : [[opts.root, undefined] as const];
  const classSet = new Set<string>();
  for (const [b] of bases) for (const c of subdirs(b)) classSet.add(c);
  const classes = [...classSet].sort();
  if (classes.length < 2) throw new Error(`${opts.root}: need at least two class folders, found ${classes.length ? classes.join(', ') : 'none'}`);
  const items: Item[] = [];
  const files = new Map<string, string>();
  for (const [b, split] of bases)
    for (const c of classes) {
      const dir = join(b, c);
      if (!existsSync(dir)) continue;
      for (const f of listImages(dir)) {
        const id = `${split ? split + '/' : ''}${c}/${f}`;
        files.set(id, join(dir, f));
        items.push({ id, label: classes.indexOf(c), group: `image:${id}`, split });
      }
    }
  const limited = applyLimit(items, opts.limit);
  // The listing itself is part of the key: adding files must invalidate the cache.
  const listing = createHash('sha256').update(limited.map((it) => it.id).join('\n')).digest('hex');
  return buildImageSet(
    {
      kind: 'folder',
      name: opts.name ?? basename(resolve(opts.root)),
      task: classes.length === 2 ? 'binary' : 'multiclass',
      classes,
      items: limited,
      locate: () => files,
      keyFiles: [opts.root],
      keyExtra: listing,
      source: opts.root,
      defaultChannels: 1,
    },
    opts,
  );
}

// The decoded-image cache: one uncompressed npz per (metadata files' identity, every image file's
// identity, decode options, item ids), so a second load only reads one file, and replacing or
// repairing any image (new size, mtime, ctime or inode) decodes again. Node only.
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { PrepareOptions } from './image.ts';
import { encodeNpz, parseNpy } from './npy.ts';
import { readZip } from './zip.ts';
import { defaultCacheDir, readFileBytes, writeFileAtomic } from './node-files.ts';
import type { BadImage } from './image-set.ts';

const CACHE_VERSION = 2;

export interface CacheMeta {
  version: number;
  ids: string[];
  bad: BadImage[];
  size: number;
  channels: number;
}

function statKey(path: string): { path: string; mtimeMs: number; size: number } | { path: string; missing: true } {
  try {
    const s = statSync(path);
    return { path: resolve(path), mtimeMs: s.mtimeMs, size: s.size };
  } catch {
    return { path: resolve(path), missing: true };
  }
}

/**
 * One hash over the identity of every image file (resolved path, size, mtime, ctime, inode;
 * 'missing' for files not found), in item order. ctime and inode change when a file is replaced
 * even if its mtime was preserved (cp -p, rsync -t).
 */
export function filesIdentity(files: (string | undefined)[]): string {
  const h = createHash('sha256');
  for (const f of files) {
    if (!f) {
      h.update('-\n');
      continue;
    }
    try {
      const st = statSync(f);
      h.update(`${resolve(f)}\t${st.size}\t${st.mtimeMs}\t${st.ctimeMs}\t${st.ino}\n`);
    } catch {
      h.update(`${resolve(f)}\tmissing\n`);
    }
  }
  return h.digest('hex');
}

export interface CacheKey {
  kind: string;
  /** Paths whose identity (mtime, size) invalidates the cache. */
  keyFiles: string[];
  keyExtra?: unknown;
  /** filesIdentity() of the image files. */
  imagesKey: string;
  prep: PrepareOptions;
  onBadImage: 'skip' | 'fail';
  ids: string[];
}

/** The cache file for these inputs, or undefined when caching is off (cacheDir false). */
export function cachePath(k: CacheKey, cacheDir: string | false | undefined): string | undefined {
  if (cacheDir === false) return undefined;
  const key = createHash('sha256')
    .update(
      JSON.stringify({
        v: CACHE_VERSION,
        kind: k.kind,
        files: k.keyFiles.map(statKey),
        extra: k.keyExtra ?? null,
        images: k.imagesKey,
        prep: k.prep,
        onBadImage: k.onBadImage,
        ids: createHash('sha256').update(k.ids.join('\n')).digest('hex'),
      }),
    )
    .digest('hex')
    .slice(0, 20);
  return join(cacheDir ?? defaultCacheDir(), 'decoded', `${k.kind}-${k.prep.size}px-${k.prep.channels}ch-${key}.npz`);
}


export function readCache(path: string): { images: Uint8Array; meta: CacheMeta } | null {
  if (!existsSync(path)) return null;
  try {
    const z = readZip(readFileBytes(path), path);
    const meta = JSON.parse(new TextDecoder().decode(z.get('meta.json')!)) as CacheMeta;
    const arr = parseNpy(z.get('images.npy')!, `${path}: images.npy`);
    if (meta.version !== CACHE_VERSION || !(arr.data instanceof Uint8Array)) return null;
    return { images: arr.data, meta };
  } catch {
    return null; // a corrupt cache is just a miss
  }
}

/** Write the decodable images (rows in item order) and their ids; a failure is only logged. */
export function writeCache(path: string, packed: Uint8Array, meta: Omit<CacheMeta, 'version'>, log: (msg: string) => void): void {
  const full: CacheMeta = { version: CACHE_VERSION, ...meta };
  try {
    writeFileAtomic(
      path,
      encodeNpz({ images: { data: packed, shape: [meta.ids.length, meta.channels, meta.size, meta.size] } }, { extra: { 'meta.json': new TextEncoder().encode(JSON.stringify(full)) } }),
    );
  } catch (e) {
    log(`could not write cache ${path}: ${(e as Error).message}`);
  }
}

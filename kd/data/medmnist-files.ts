// MedMNIST files on disk: find NAME(_SIZE).npz locally ($ROSKD_DATA_DIR, the medmnist Python
// package's $MEDMNIST_ROOT and ~/.medmnist, the cache) or download it into the cache, then read
// it into a Dataset (medmnist.ts assembles the arrays). Node only.
import { createHash } from 'node:crypto';
import { closeSync, createWriteStream, existsSync, openSync, readSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, basename } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Dataset } from './dataset.ts';
import { MEDMNIST_INFO, MEDMNIST_SIZES, medmnistFromArrays, medmnistSourceSize } from './medmnist.ts';
import { defaultCacheDir, makeDirs, readNpzFile } from './node-files.ts';

export const MEDMNIST_DEFAULT_URL = 'https://zenodo.org/records/10519652/files';


/** $ROSKD_DATA_DIR: folders (separated by ':') holding downloaded .npz files, searched first. */
function defaultSearchDirs(): string[] {
  return (process.env.ROSKD_DATA_DIR ?? '').split(':').filter(Boolean);
}

/**
 * Where the `medmnist` Python package keeps its downloads: $MEDMNIST_ROOT when set, and its
 * default root ~/.medmnist (same file names: pneumoniamnist.npz, pneumoniamnist_64.npz).
 */
function pythonPackageDirs(): { dir: string; where: string }[] {
  const out: { dir: string; where: string }[] = [];
  if (process.env.MEDMNIST_ROOT) out.push({ dir: process.env.MEDMNIST_ROOT, where: '$MEDMNIST_ROOT' });
  out.push({ dir: join(homedir(), '.medmnist'), where: "~/.medmnist, the medmnist Python package's folder" });
  return out;
}

/**
 * Folders checked, in order: $ROSKD_DATA_DIR's (or searchDirs), $MEDMNIST_ROOT, ~/.medmnist, the
 * cache dir itself, then <cache>/medmnist (where downloads go). Each with why it is searched.
 */
function localCandidates(name: string, size: number, opts: Pick<ResolveOptions, 'searchDirs' | 'cacheDir'>): { path: string; where: string }[] {
  const file = `${medmnistStem(name, size)}.npz`;
  const cache = opts.cacheDir ?? defaultCacheDir();
  const dirs = [
    ...(opts.searchDirs ?? defaultSearchDirs()).map((dir) => ({ dir, where: opts.searchDirs ? 'a search folder' : '$ROSKD_DATA_DIR' })),
    ...pythonPackageDirs(),
    { dir: cache, where: 'the cache' },
    { dir: join(cache, 'medmnist'), where: 'the download cache' },
  ];
  return dirs.map(({ dir, where }) => ({ path: join(dir, file), where }));
}

/** An existing local copy of NAME(_SIZE).npz, or undefined. */
export function findLocalMedMNIST(name: string, size: number, opts: Pick<ResolveOptions, 'searchDirs' | 'cacheDir'> = {}): string | undefined {
  return findLocal(name, size, opts)?.path;
}

/** The first existing local copy and why that folder is searched. */
function findLocal(name: string, size: number, opts: Pick<ResolveOptions, 'searchDirs' | 'cacheDir'>): { path: string; where: string } | undefined {
  return localCandidates(name, size, opts).find((c) => existsSync(c.path));
}

/** File stem for a name at a size: pneumoniamnist / pneumoniamnist_64. */
function medmnistStem(name: string, size: number): string {
  return size === 28 ? name : `${name}_${size}`;
}

export interface ResolveOptions {
  /** Official image size of the file to find (28, 64, 128, 224). Default 28. */
  size?: number;
  /** Defaults to $ROSKD_CACHE or ~/.cache/roskd. Files go to <cacheDir>/medmnist/. */
  cacheDir?: string;
  /** Default true, unless $ROSKD_OFFLINE=1. */
  allowDownload?: boolean;
  /** Base URL (files are <base>/<stem>.npz?download=1). Default $ROSKD_MEDMNIST_URL or the Zenodo record. */
  baseUrl?: string;
  /** Directories searched before the cache. Default: $ROSKD_DATA_DIR (':'-separated), else none. */
  searchDirs?: string[];
  /** Check the MD5 of downloads against MedMNIST's published value when known. Default true. */
  verify?: boolean;
  /** Progress / info messages (default: silent). */
  log?: (msg: string) => void;
  /** Called as download bytes arrive (kd/progress.ts formatDownload makes a line of it). */
  onProgress?: DownloadProgress;
  /** The fetch to use (default: the global one). */
  fetch?: typeof fetch;
}

/** Bytes of a download so far; total is the server's Content-Length, when it sent one. */
export type DownloadProgress = (p: { file: string; received: number; total: number | null; secs: number }) => void;

/** True if the last 64 KiB of a file hold a zip end-of-central-directory record. */
function hasZipTail(path: string): boolean {
  const size = statSync(path).size;
  const len = Math.min(size, 22 + 65535);
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(len);
    readSync(fd, buf, 0, len, size - len);
    for (let p = len - 22; p >= 0; p--) if (buf.readUInt32LE(p) === 0x06054b50) return true; // end-of-central-directory signature
    return false;
  } finally {
    closeSync(fd);
  }
}

/**
 * Find NAME.npz (or NAME_SIZE.npz): the search dirs, $MEDMNIST_ROOT, ~/.medmnist, the cache, else
 * download it into the cache (temp file, verified, then renamed).
 */
export async function resolveMedMNIST(name: string, opts: ResolveOptions = {}): Promise<string> {
  const size = opts.size ?? 28;
  if (!/^[a-z0-9_]+$/.test(name)) throw new Error(`resolveMedMNIST: bad dataset name ${JSON.stringify(name)} (expected e.g. pneumoniamnist)`);
  const stem = medmnistStem(name, size);
  const file = `${stem}.npz`;
  const searchDirs = opts.searchDirs ?? defaultSearchDirs();
  const cacheDir = join(opts.cacheDir ?? defaultCacheDir(), 'medmnist');
  const local = findLocal(name, size, opts);
  if (local) {
    opts.log?.(`found ${local.path} (${local.where})`);
    return local.path;
  }
  const tried = localCandidates(name, size, opts).map((c) => c.path);
  const allow = opts.allowDownload ?? process.env.ROSKD_OFFLINE !== '1';
  const base = (opts.baseUrl ?? process.env.ROSKD_MEDMNIST_URL ?? MEDMNIST_DEFAULT_URL).replace(/\/+$/, '');
  const url = `${base}/${file}?download=1`;
  if (!allow) throw new Error(`${file} not found (looked in ${tried.join(', ')}) and downloading is disabled; fetch it from ${url}`);
  const dest = join(cacheDir, file);
  makeDirs(cacheDir, 'the data cache (ROSKD_CACHE)');
  const tmp = `${dest}.part-${process.pid}-${Math.random().toString(36).slice(2)}`;
  const log = opts.log ?? (() => {});
  log(`downloading ${url} -> ${dest}`);
  const hint = `Offline? Copy ${file} into ${searchDirs[0] ?? cacheDir} or ${cacheDir}, or set ROSKD_MEDMNIST_URL to a mirror.`;
  let res: Response;
  try {
    res = await (opts.fetch ?? fetch)(url, { redirect: 'follow' });
  } catch (e) {
    const cause = (e as { cause?: { message?: string; code?: string } }).cause;
    throw new Error(`could not download ${url}: ${cause?.code ?? cause?.message ?? (e as Error).message}. ${hint}`);
  }
  if (!res.ok || !res.body) throw new Error(`could not download ${url}: HTTP ${res.status} ${res.statusText}. ${hint}`);
  const md5 = createHash('md5');
  const lengthHeader = Number(res.headers.get('content-length'));
  const total = Number.isFinite(lengthHeader) && lengthHeader > 0 ? lengthHeader : null;
  const t0 = performance.now();
  let received = 0;
  const report = () => opts.onProgress?.({ file, received, total, secs: (performance.now() - t0) / 1000 });
  try {
    // Hash while streaming so multi-GB files are never held in memory.
    await pipeline(
      Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
      async function* (src: AsyncIterable<Buffer>) {
        for await (const chunk of src) {
          md5.update(chunk);
          received += chunk.length;
          report();
          yield chunk;
        }
      },
      createWriteStream(tmp),
    );
  } catch (e) {
    try {
      unlinkSync(tmp);
    } catch {}
    throw new Error(`could not download ${url}: ${(e as Error).message}. ${hint}`);
  }
  const expected = MEDMNIST_INFO[name]?.md5[size];
  const got = md5.digest('hex');
  let problem = '';
  if (expected && opts.verify !== false && got !== expected) problem = `MD5 ${got}, expected ${expected} (corrupt or changed upstream; pass verify: false to accept)`;
  else if (!hasZipTail(tmp)) problem = 'not a zip/npz archive (an HTML error page or a truncated transfer?)';
  if (problem) {
    unlinkSync(tmp);
    throw new Error(`downloaded ${url}: ${problem}`);
  }
  renameSync(tmp, dest);
  log(`saved ${dest}`);
  return dest;
}

export interface MedMNISTOptions extends ResolveOptions {
  /** Image size wanted; for a name picks the official file, and resizes when it differs. */
  size?: number;
}

/** Load a MedMNIST npz from a path (synchronous). The dataset name is taken from the file name. */
export function loadMedMNISTFile(path: string, opts: { size?: number; name?: string } = {}): Dataset {
  const name = opts.name ?? basename(path).replace(/\.npz$/i, '').replace(/_(28|64|128|224)$/, '');
  return medmnistFromArrays(readNpzFile(path), name, path, { size: opts.size });
}

/**
 * Load a MedMNIST 2D set by path (anything ending in .npz or containing a slash)
 * or by name (`pneumoniamnist`), resolving/downloading it (see resolveMedMNIST).
 */
export async function loadMedMNIST(pathOrName: string, opts: MedMNISTOptions = {}): Promise<Dataset> {
  const isPath = /\.npz$/i.test(pathOrName) || pathOrName.includes('/') || pathOrName.includes('\\');
  if (isPath) return loadMedMNISTFile(pathOrName, { size: opts.size });
  const name = pathOrName.toLowerCase();
  const preferred = medmnistSourceSize(opts.size);
  let path: string | undefined;
  if (opts.size === undefined || !(MEDMNIST_SIZES as readonly number[]).includes(opts.size)) {
    // A size MedMNIST does not publish is resampled anyway, so a copy already on disk beats a
    // download (e.g. size 32 offline with only the 28 px file): preferred, larger, then smaller.
    const order = [preferred, ...MEDMNIST_SIZES.filter((s) => s > preferred), ...MEDMNIST_SIZES.filter((s) => s < preferred).reverse()];
    for (const s of order) {
      const local = findLocal(name, s, opts);
      if (local) {
        opts.log?.(`found ${local.path} (${local.where})`);
        path = local.path;
        break;
      }
    }
  }
  path ??= await resolveMedMNIST(name, { ...opts, size: preferred });
  opts.log?.(`loading ${path}${opts.size !== undefined ? ` at ${opts.size} px` : ''}`);
  return loadMedMNISTFile(path, { size: opts.size, name });
}

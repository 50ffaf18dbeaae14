// GPU buffer pool keyed by size class, with live/pooled counters for tests and benchmarks.
//
// Sizes are rounded up to a class (powers of two below 1 MiB, then 1/8 steps of the power of
// two), so a freed buffer serves the next request of the same class without reallocation.
//
// A request gets the OLDEST free buffer of its class (lowest creation number), not the last
// one freed. The free set at the start of a training step is the same every step, so each
// tensor of the step gets the same buffer every step: the bind-group cache (program.ts) then
// hits instead of creating ~900 bind groups per MobileNet-V2 step. With last-freed-first, the
// buffers were permuted from step to step (91% misses), and the churned bind groups, freed
// only by V8's garbage collector, held one lavapipe memory mapping each until the process hit
// vm.max_map_count and lavapipe crashed (issue 13).
import { getGpu } from './device.ts';

const USAGE = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST;

export interface MemoryStats {
  /** buffers handed out and not yet released */
  liveBuffers: number;
  liveBytes: number;
  /** high-water mark of liveBytes since the last resetPeak() */
  peakBytes: number;
  /** buffers kept for reuse */
  pooledBuffers: number;
  pooledBytes: number;
}

/** Free buffers per size class, sorted by creation number, newest first (pop() gives the oldest). */
const free = new Map<number, GPUBuffer[]>();
const serial = new WeakMap<GPUBuffer, number>();
let created = 0;
const stats: MemoryStats = { liveBuffers: 0, liveBytes: 0, peakBytes: 0, pooledBuffers: 0, pooledBytes: 0 };

export function sizeClass(bytes: number): number {
  const b = Math.max(16, Math.ceil(bytes / 16) * 16);
  if (b <= 1 << 20) return 2 ** Math.ceil(Math.log2(b));
  const p = 2 ** Math.floor(Math.log2(b));
  const step = p / 8;
  return Math.ceil(b / step) * step;
}

export function acquireBuffer(bytes: number): GPUBuffer {
  const cls = sizeClass(bytes);
  const list = free.get(cls);
  let buf = list?.pop();
  if (buf) {
    stats.pooledBuffers--;
    stats.pooledBytes -= cls;
  } else {
    const { device, limits } = getGpu();
    if (cls > limits.maxBufferSize) throw new RangeError(`buffer of ${bytes} bytes exceeds the adapter's maxBufferSize ${limits.maxBufferSize}`);
    buf = device.createBuffer({ size: cls, usage: USAGE });
    serial.set(buf, created++);
  }
  stats.liveBuffers++;
  stats.liveBytes += cls;
  if (stats.liveBytes > stats.peakBytes) stats.peakBytes = stats.liveBytes;
  return buf;
}

export function releaseBuffer(buf: GPUBuffer): void {
  const cls = buf.size;
  stats.liveBuffers--;
  stats.liveBytes -= cls;
  let list = free.get(cls);
  if (!list) free.set(cls, (list = []));
  // insert keeping newest-first order (binary search: lists can hold hundreds of buffers)
  const id = serial.get(buf) ?? -1;
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((serial.get(list[mid]) ?? -1) > id) lo = mid + 1;
    else hi = mid;
  }
  if (lo === list.length) list.push(buf);
  else list.splice(lo, 0, buf);
  stats.pooledBuffers++;
  stats.pooledBytes += cls;
}

export function memoryStats(): MemoryStats {
  return { ...stats };
}

export function resetPeak(): void {
  stats.peakBytes = stats.liveBytes;
}

/** Destroys every pooled (free) buffer; live ones are untouched. */
export function trimPool(): void {
  for (const list of free.values()) for (const b of list) b.destroy();
  free.clear();
  stats.pooledBuffers = 0;
  stats.pooledBytes = 0;
}

// Node-only: returning the native memory behind dropped WebGPU objects, and a clear error
// before lavapipe runs out of memory mappings.
//
// WebGPU has no destroy() for a bind group: Dawn frees one when V8 collects its JS wrapper.
// V8 does not see the native cost (on lavapipe every descriptor set is its own memfd mapping,
// and Dawn keeps its descriptor pools at their peak size), so thousands of dropped bind groups
// can wait for a collection that a small JS heap never asks for. When the process reaches
// vm.max_map_count (65,530 by default) lavapipe's next mmap fails and it writes through the
// failed pointer: exit 139, no message (issue 13). program.ts calls reclaimNativeMemory()
// whenever its bind-group cache drops its entries.
import { readFileSync } from 'node:fs';
import v8 from 'node:v8';
import vm from 'node:vm';
import { GpuError } from '../device.ts';

let gc: (() => void) | null = null;

/** A full V8 collection (globalThis.gc with --expose-gc, else the same function made available at run time). */
export function fullGc(): void {
  if (!gc) {
    const g = (globalThis as { gc?: () => void }).gc;
    if (g) gc = g;
    else {
      v8.setFlagsFromString('--expose-gc');
      gc = vm.runInNewContext('gc') as () => void;
    }
  }
  gc();
}

/** Memory mappings of this process (Linux /proc), or -1 where that cannot be read. */
export function mappingCount(): number {
  try {
    const s = readFileSync('/proc/self/maps', 'latin1');
    let n = 0;
    for (let i = s.indexOf('\n'); i >= 0; i = s.indexOf('\n', i + 1)) n++;
    return n;
  } catch {
    return -1;
  }
}

/** The kernel's per-process mapping limit, or Infinity where unknown. */
export function maxMappingCount(): number {
  try {
    const v = Number(readFileSync('/proc/sys/vm/max_map_count', 'utf8').trim());
    return v > 0 ? v : Infinity;
  } catch {
    return Infinity;
  }
}

const limit = maxMappingCount();

/**
 * Collects dropped bind groups (so their descriptor sets go back to Dawn's pools), then throws
 * a GpuError while a clear message is still possible if the mappings are near the limit.
 */
export function reclaimNativeMemory(): void {
  fullGc();
  if (!Number.isFinite(limit)) return;
  const n = mappingCount();
  if (n > 0.9 * limit)
    throw new GpuError(
      `the process holds ${n} memory mappings, near the kernel's limit vm.max_map_count = ${limit} (the CPU Vulkan driver, lavapipe, maps every GPU buffer and bind group separately); ` +
        `raise it (as root: sysctl -w vm.max_map_count=262144) or use smaller models or batches`,
    );
}

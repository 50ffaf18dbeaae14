// The platform everywhere but Node (package.json `imports` "#platform", condition "default"):
// a browser or worker, whose WebGPU entry point is `navigator.gpu`. Nothing to configure: no
// environment, and the browser schedules GPU callbacks itself.
import type { Platform } from '../device.ts';

export const platform: Platform = {
  defaults: () => ({}),
  gpu() {
    const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
    if (!gpu) throw new Error('roskd: this environment has no navigator.gpu (WebGPU); pass init({ gpu }) with a GPU object');
    return gpu;
  },
  wait: (p) => p,
  adapterError(err) {
    const why = err === null ? 'requestAdapter() returned null' : `requestAdapter() failed: ${err instanceof Error ? err.message : String(err)}`;
    return `no WebGPU adapter (${why}); in Chromium, WebGPU may need --enable-unsafe-webgpu on this system`;
  },
};

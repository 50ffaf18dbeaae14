// The adapter panel: what WebGPU gave this page (adapter, features, limits), or, where it gave
// nothing, what to enable.
import * as rk from '../../engine/index.ts';
import { $, el } from './dom.ts';

/** Why there is no WebGPU here, and what to do about it. */
export function noGpuAdvice(err: unknown): string {
  const why = err instanceof Error ? err.message : String(err);
  if (!globalThis.isSecureContext) return `WebGPU needs a secure context: open this page over https:// or from http://127.0.0.1 / http://localhost (now: ${location.origin}). (${why})`;
  if (!('gpu' in navigator))
    return 'This browser exposes no WebGPU (navigator.gpu is missing). Use Chrome or Edge 113+ (Windows, macOS, ChromeOS, Android), Safari 26+, or Firefox 141+ on Windows. ' +
      'On Linux, Chrome needs chrome://flags/#enable-unsafe-webgpu (and #enable-vulkan) enabled, or start it with --enable-unsafe-webgpu --enable-features=Vulkan.';
  return `WebGPU is present but gave no usable adapter: ${why}. Check chrome://gpu (WebGPU status); on Linux enable chrome://flags/#enable-unsafe-webgpu and #enable-vulkan, or update the GPU driver. Without a GPU, Chrome's --enable-unsafe-webgpu gives a (slow) SwiftShader CPU adapter.`;
}

/** Minimum limits the engine's kernels rely on (WebGPU's own defaults). */
const NEEDED: Record<string, number> = { maxStorageBuffersPerShaderStage: 8, maxComputeInvocationsPerWorkgroup: 256, maxStorageBufferBindingSize: 128 * 2 ** 20, maxComputeWorkgroupStorageSize: 16384 };

export function tooSmall(g: rk.Gpu): string[] {
  const lim = g.limits as unknown as Record<string, number>;
  return Object.entries(NEEDED).filter(([k, v]) => lim[k] !== undefined && lim[k] < v).map(([k, v]) => `${k} ${lim[k]} < ${v}`);
}

export function showAdapter(g: rk.Gpu | null, err?: unknown): void {
  const box = $('adapter-info');
  box.replaceChildren();
  if (!g) {
    box.append(el('p', { className: 'error' }, noGpuAdvice(err)));
    return;
  }
  const cpu = /swiftshader|llvmpipe|lavapipe|software|warp/i.test(`${g.info.description} ${g.info.device} ${g.info.architecture} ${g.info.vendor}`);
  const dl = el('dl', { className: 'kv' });
  const row = (k: string, v: string) => dl.append(el('dt', {}, k), el('dd', {}, v));
  row('adapter', g.info.description || g.info.device || '(not disclosed)');
  row('vendor / architecture', `${g.info.vendor || '?'} / ${g.info.architecture || '?'}`);
  row('backend', g.info.backend || '?');
  row('limits in use', g.limitsMode === 'adapter' ? "the adapter's maxima" : "WebGPU's defaults");
  row('subgroups', g.subgroupSize ? `${g.subgroupSize} lanes` : 'not used');
  row('features', g.features.join(', ') || 'none');
  for (const [k, v] of Object.entries(g.limits)) row(k, String(v));
  box.append(el('h2', {}, 'WebGPU adapter'), dl);
  const small = tooSmall(g);
  if (small.length) box.append(el('p', { className: 'error' }, `This adapter is too small for the engine's kernels: ${small.join('; ')}. Use a browser or GPU with WebGPU's default limits.`));
  if (cpu) box.append(el('p', { className: 'info' }, 'This is a CPU (software) adapter: everything works, but training is slow. On a machine with a GPU, enable WebGPU for it (on Linux: chrome://flags/#enable-unsafe-webgpu and #enable-vulkan).'));
}

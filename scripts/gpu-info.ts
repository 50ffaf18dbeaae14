// npm run gpu-info: the adapter roskd would use, its features and the limits in use.
import { quietDawnWarnings } from '../engine/node/dawn-stderr.ts';
import { init, GpuError } from '../engine/index.ts';

await quietDawnWarnings(); // Dawn's two start-up warnings only with ROSKD_VERBOSE=1

try {
  const g = await init();
  console.log(`backend:      ${g.info.backend}`);
  console.log(`adapter:      ${g.info.description || g.info.device}`);
  console.log(`vendor:       ${g.info.vendor}  architecture: ${g.info.architecture}`);
  console.log(`timestamps:   ${g.hasTimestamps ? 'yes' : 'no'}`);
  console.log(`subgroups:    ${g.subgroupSize ? `${g.subgroupSize} lanes (kernels share loads across them; ROSKD_SUBGROUPS=0 turns that off)` : 'not used (no fixed subgroup size, or ROSKD_SUBGROUPS=0)'}`);
  console.log(`features:     ${g.features.join(', ')}`);
  console.log(`limits in use: ${g.limitsMode === 'default' ? "WebGPU's defaults (ROSKD_LIMITS=default)" : "the adapter's maxima (ROSKD_LIMITS=default asks for WebGPU's defaults only)"}`);
  for (const [k, v] of Object.entries(g.limits)) console.log(`  ${k.padEnd(36)} ${v}`);
  g.device.destroy();
} catch (e) {
  console.error(e instanceof GpuError ? e.message : String(e));
  process.exit(1);
}

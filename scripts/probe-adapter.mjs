// Prints the adapter description and exits 0 if Dawn finds an adapter, else exits 1.
// Plain JS (no tsx) so setup can call it before anything else works.
import { create, globals } from 'webgpu';
Object.assign(globalThis, globals);
const gpu = create([]); // kept referenced until exit (Dawn crashes if it is collected)
try {
  const a = await gpu.requestAdapter();
  if (!a) process.exit(1);
  console.log(a.info.description || a.info.device || a.info.vendor || 'unnamed adapter');
  process.exit(0);
} catch {
  process.exit(1);
}

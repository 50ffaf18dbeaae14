import * as rk from '../engine/index.ts';
import { getInstance } from '../engine/device.ts';
const g = await rk.init();
console.log(g.info, g.hasTimestamps);
(globalThis as any).navigator = { gpu: getInstance() };
const tf = await import('@tensorflow/tfjs-core');
await import('@tensorflow/tfjs-backend-webgpu');
console.log(await tf.setBackend('webgpu'), tf.getBackend());
const a = tf.randomNormal([1024, 1024]); const b = tf.randomNormal([1024, 1024]);
for (let i = 0; i < 4; i++) { const t0 = performance.now(); const c = tf.matMul(a, b); await c.data(); console.log('mm', performance.now() - t0); c.dispose(); }
const be: any = tf.backend(); console.log(Object.keys(be).slice(0, 50), be.device === g.device);

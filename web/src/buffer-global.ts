// kd/data/zip.ts, npy.ts and image.ts (and pngjs) use Node's `Buffer`. The web build aliases
// `pngjs` to its own browserify bundle (pngjs/browser.js: the same decoder, so a PNG decodes to the
// same pixels as in Node), which carries feross' `buffer` polyfill; its Buffer class is the
// constructor of any buffer pngjs returns. Installing it as the global makes those kd files run
// unchanged in the page. Import this module first.
import pngjs from 'pngjs';

const g = globalThis as unknown as { Buffer?: unknown };
if (!g.Buffer) {
  const { PNG } = pngjs as unknown as { PNG: typeof import('pngjs').PNG };
  g.Buffer = (PNG.sync.write(new PNG({ width: 1, height: 1 })) as object).constructor;
}
export {};

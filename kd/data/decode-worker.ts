// Worker-thread body for parallel image decoding (see image-decode.ts decodeAll).
// Receives {i, file}, replies {i, px} (transferred) or {i, error}.
import { parentPort, workerData } from 'node:worker_threads';
import { readFileSync } from 'node:fs';
import { prepareImage, type PrepareOptions } from './image.ts';

const opts = workerData as PrepareOptions;
parentPort!.on('message', (msg: { i: number; file: string }) => {
  try {
    const px = prepareImage(readFileSync(msg.file), msg.file, opts);
    parentPort!.postMessage({ i: msg.i, px }, [px.buffer as ArrayBuffer]);
  } catch (e) {
    parentPort!.postMessage({ i: msg.i, error: (e as Error).message ?? String(e) });
  }
});

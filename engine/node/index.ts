// roskd under Node: the portable engine plus what needs Node (files, the Dawn instance).
//   import * as rk from './engine/node/index.ts'   // rk.io.loadSafetensors(path), ...
// `engine/index.ts` alone also works under Node (it opens Dawn through "#platform").
export * from '../index.ts';
export * as io from './safetensors-file.ts';
export { getInstance } from './dawn.ts';

// Grad-CAM (Selvaraju et al., ICCV 2017) on the engine's autograd, for every model in
// models/index.ts and any Module whose layers are called through call():
//
//   A      = the target layer's output [N, C, h, w] for the input batch (model in eval mode)
//   s_n    = logit of the target class of image n (the predicted class unless given)
//   w_nc   = mean over (i, j) of d s_n / d A_ncij
//   map_n  = ReLU(sum_c w_nc A_nc)                                   -> [N, h, w]
//
// How: a forward hook on the target module replaces its output by a leaf that requires grad
// (a detached handle on the same storage), so one backward from the logits seeded with the
// one-hot targets fills leaf.grad with every image's d s_n / d A_n at once (images are
// independent in eval mode). The parameters are taken out of the graph for the call, so nothing
// upstream of the layer is recorded and no parameter .grad is touched; every module's training
// flag and every parameter's requires-grad flag are restored afterwards, also on error. Every
// GPU tensor made here is released before returning (memoryStats() live bytes are unchanged).
//
// Default layers (what pytorch-grad-cam's README recommends: `model.layer4[-1]` for ResNet,
// `model.features[-1]` for DenseNet and MobileNet):
//   resnet18/34/50 -> 'layer4'          (the last residual stage; same tensor as layer4[-1])
//   densenet121    -> 'features.norm5'  (features[-1]: the final BatchNorm, before the ReLU that
//                                        forward applies; same tensor as 'features')
//   mobilenet_v2   -> 'features.18'     (features[-1]: the last 1x1 Conv-BN-ReLU6, 1280 channels)
import * as rk from '../engine/index.ts';
import type { Tensor } from '../engine/tensor.ts';
import type { AnyModule } from '../engine/nn/module.ts';
import { Sequential } from '../engine/nn/containers.ts';
import { ResNet } from './resnet.ts';
import { DenseNet } from './densenet.ts';
import { MobileNetV2 } from './mobilenet.ts';

export interface GradCamOptions {
  /** PyTorch module name of the target layer ('layer4', 'features.denseblock4', 'layer3.1.conv2', ...); default: defaultCamLayer(model) */
  layer?: string;
  /** target class: one for every image, or one per image; default: each image's predicted (arg-max) class */
  classIndex?: number | readonly number[];
  /** how `probs` is computed from the logits: 'softmax' (single-label, default) or 'sigmoid' (multi-label) */
  activation?: 'softmax' | 'sigmoid';
}

export interface GradCamResult {
  /** the maps, [N, h, w] row-major: ReLU of the gradient-weighted channel sum, not normalised */
  maps: Float32Array;
  /** [N, h, w]: the target layer's spatial size */
  shape: [number, number, number];
  /** the target layer's name and its output shape [N, C, h, w] */
  layer: string;
  layerShape: number[];
  /** the class each map explains, per image */
  classIndex: Int32Array;
  /** [N, numClasses] logits and probabilities (softmax or sigmoid) of the same forward pass */
  logits: Float32Array;
  probs: Float32Array;
  numClasses: number;
  /** [N, C] channel weights w_nc (spatial means of the gradients), for inspection */
  weights: Float32Array;
}

/** The layer Grad-CAM explains by default: the last convolutional stage (see the file header). */
export function defaultCamLayer(model: AnyModule): string {
  if (model instanceof ResNet) return 'layer4';
  if (model instanceof DenseNet || model instanceof MobileNetV2) return `features.${model.features.namedChildren().at(-1)![0]}`;
  const features = model.namedChildren().find(([n]) => n === 'features')?.[1];
  if (features instanceof Sequential && features.length > 0) return `features.${features.namedChildren().at(-1)![0]}`;
  throw new Error(`gradCam: no default target layer for ${model.constructor.name}; pass { layer: '<module name>' } (one of ${layerNames(model).slice(0, 12).join(', ')}, ...)`);
}

/** Names of the modules a layer option may name (every submodule, PyTorch's named_modules() minus the root). */
export function layerNames(model: AnyModule): string[] {
  return model.namedModules().flatMap(([n]) => (n ? [n] : []));
}

function findLayer(model: AnyModule, name: string): AnyModule {
  const hit = model.namedModules().find(([n]) => n === name);
  if (hit && name) return hit[1];
  const names = layerNames(model);
  const near = names.filter((n) => !n.includes('.') || n.split('.').length <= 2).slice(0, 20);
  throw new Error(`gradCam: ${model.constructor.name} has no module named "${name}"; names are PyTorch's named_modules(), e.g. ${near.join(', ')}${names.length > near.length ? ', ...' : ''}`);
}

function resolveClasses(classIndex: GradCamOptions['classIndex'], logits: Float32Array, N: number, K: number): Int32Array {
  const out = new Int32Array(N);
  if (classIndex === undefined) {
    for (let n = 0; n < N; n++) {
      let best = 0;
      for (let k = 1; k < K; k++) if (logits[n * K + k] > logits[n * K + best]) best = k;
      out[n] = best;
    }
    return out;
  }
  const list = typeof classIndex === 'number' ? new Array<number>(N).fill(classIndex) : classIndex;
  if (list.length !== N) throw new RangeError(`gradCam: classIndex has ${list.length} entries for a batch of ${N} images`);
  list.forEach((c, n) => {
    if (!Number.isInteger(c) || c < 0 || c >= K) throw new RangeError(`gradCam: classIndex ${c} (image ${n}) is not a class of this model (0..${K - 1})`);
    out[n] = c;
  });
  return out;
}

/**
 * Grad-CAM maps of a batch x [N, C, H, W] (already normalised as the model expects). The model is
 * run in eval mode (BatchNorm running statistics, no dropout); must not be called inside noGrad().
 */
export async function gradCam(model: AnyModule, x: Tensor, opts: GradCamOptions = {}): Promise<GradCamResult> {
  if (!rk.isGradEnabled()) throw new Error('gradCam needs autograd (gradients w.r.t. a layer): do not call it inside noGrad()');
  if (x.shape.length !== 4) throw new RangeError(`gradCam: input must be [N, C, H, W], got ${x.describe()}`);
  const layer = opts.layer ?? defaultCamLayer(model);
  const target = findLayer(model, layer);
  const N = x.shape[0];

  return rk.nn.withFrozenModel(model, 'gradCam', async () => {
    let leaf: Tensor | null = null;
    let logits: Tensor | null = null;
    const remove = target.registerForwardHook((out: unknown) => {
      if (leaf) throw new Error(`gradCam: layer "${layer}" ran twice in one forward pass; name a module that runs once`);
      if (!(out instanceof rk.Tensor) || out.shape.length !== 4 || out.shape[0] !== N)
        throw new Error(`gradCam: layer "${layer}" must output an [N=${N}, C, h, w] tensor, got ${out instanceof rk.Tensor ? out.describe() : typeof out}`);
      // `out` is left to the enclosing call()'s tidy: a module may return its own input, which is not ours to free
      leaf = rk.keep(out.detach()).requireGrad();
      // a differentiable view: the caller may dispose it, the kept leaf (and its .grad) stays ours
      return rk.reshape(leaf, leaf.shape);
    });
    try {
      try {
        logits = model.call(x) as Tensor;
      } finally {
        remove();
      }
      if (!leaf) throw new Error(`gradCam: layer "${layer}" did not run in the forward pass (e.g. an Identity that forward skips); name another`);
      const A: Tensor = leaf;
      if (logits.shape.length !== 2 || logits.shape[0] !== N) throw new Error(`gradCam: the model output must be logits [N=${N}, classes], got ${logits.describe()}`);
      if (!logits.node) throw new Error(`gradCam: the logits do not depend on layer "${layer}" through differentiable ops`);
      const K = logits.shape[1];
      const logitsHost = (await logits.toArray()) as Float32Array;
      const classIndex = resolveClasses(opts.classIndex, logitsHost, N, K);
      const onehot = new Float32Array(N * K);
      classIndex.forEach((c, n) => (onehot[n * K + c] = 1));
      const seed = rk.tensor(onehot, [N, K]);
      try {
        logits.backward(seed);
      } finally {
        seed.dispose();
      }
      if (!A.grad) throw new Error(`gradCam: no gradient reached layer "${layer}"`);
      const G: Tensor = A.grad;
      const [, C, h, w] = A.shape;
      const { maps, weights } = rk.noGrad(() =>
        rk.tidy(() => {
          const wts = rk.mean(G, [2, 3], { keepdim: true }); // [N, C, 1, 1]
          return { weights: rk.reshape(wts, [N, C]), maps: rk.relu(rk.sum(rk.mul(A, wts), 1)) }; // [N, h, w]
        }),
      );
      try {
        const [mapsHost, weightsHost] = await Promise.all([maps.toArray(), weights.toArray()]);
        return {
          maps: mapsHost as Float32Array,
          shape: [N, h, w] as [number, number, number],
          layer,
          layerShape: [...A.shape],
          classIndex,
          logits: logitsHost,
          probs: probabilitiesOf(logitsHost, N, K, opts.activation ?? 'softmax'),
          numClasses: K,
          weights: weightsHost as Float32Array,
        };
      } finally {
        maps.dispose();
        weights.dispose();
      }
    } finally {
      const l = leaf as Tensor | null;
      l?.grad?.dispose();
      if (l) l.grad = null;
      l?.dispose();
      logits?.dispose();
    }
  });
}

function probabilitiesOf(z: Float32Array, N: number, K: number, activation: 'softmax' | 'sigmoid'): Float32Array {
  const p = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    const o = n * K;
    if (activation === 'sigmoid') {
      for (let k = 0; k < K; k++) p[o + k] = 1 / (1 + Math.exp(-z[o + k]));
      continue;
    }
    let m = -Infinity;
    for (let k = 0; k < K; k++) m = Math.max(m, z[o + k]);
    let s = 0;
    for (let k = 0; k < K; k++) s += Math.exp(z[o + k] - m);
    for (let k = 0; k < K; k++) p[o + k] = Math.exp(z[o + k] - m) / s;
  }
  return p;
}

// Model registry: torchvision architectures by name.
//   createModel('resnet18', { numClasses: 2, inChannels: 1, smallInput: true, width: 0.5, seed: 1 })
import { ResNet, resnet18, resnet34, resnet50 } from './resnet.ts';
import { DenseNet, densenet121 } from './densenet.ts';
import { MobileNetV2, mobilenetV2, type MobileNetV2Options } from './mobilenet.ts';
import type { ModelOptions } from './common.ts';

export { ResNet, BasicBlock, Bottleneck, resnet18, resnet34, resnet50, RESNET_LAYERS, type ResNetName } from './resnet.ts';
export { DenseNet, DenseLayer, DenseBlock, Transition, densenet121 } from './densenet.ts';
export { MobileNetV2, InvertedResidual, mobilenetV2, MOBILENET_V2_SETTINGS, type MobileNetV2Options } from './mobilenet.ts';
export { makeDivisible, roundHalfEven, type ModelOptions } from './common.ts';

/**
 * Every model the registry builds: a Module mapping [N, inChannels, H, W] to logits [N, numClasses]
 * (use `model.call(x)`), with `forwardFeatures(x)` -> pooled penultimate features [N, numFeatures].
 */
export type Model = ResNet | DenseNet | MobileNetV2;

const BUILDERS: Record<string, (o: ModelOptions & MobileNetV2Options) => Model> = {
  resnet18,
  resnet34,
  resnet50,
  densenet121,
  mobilenet_v2: mobilenetV2,
};
const ALIASES: Record<string, string> = { mobilenetv2: 'mobilenet_v2' };

/** Canonical names accepted by createModel (aliases such as 'mobilenetv2' are accepted too). */
export function modelNames(): string[] {
  return Object.keys(BUILDERS);
}

/** Builds a freshly initialised (seeded) model by name, in training mode. */
export function createModel(name: string, options: ModelOptions & MobileNetV2Options = {}): Model {
  const lower = name.toLowerCase();
  const key = Object.hasOwn(ALIASES, lower) ? ALIASES[lower] : lower;
  const build = Object.hasOwn(BUILDERS, key) ? BUILDERS[key] : undefined;
  if (!build) throw new RangeError(`createModel: unknown model "${name}"; available: ${modelNames().join(', ')} (alias: mobilenetv2)`);
  return build(options);
}

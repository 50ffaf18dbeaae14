// torchvision ResNet-18/34/50 (v1.5: the Bottleneck's stride sits on its 3x3 conv), with the
// width / smallInput / inChannels options of test/fixtures/torch/README.md. Parameter names,
// registration order and init are torchvision's; BN+ReLU pairs run as one fused kernel where
// the ReLU directly follows the BN (not after a residual add).
import type { Tensor, Rng } from '../engine/tensor.ts';
import { addRelu } from '../engine/ops/binary.ts';
import { flatten } from '../engine/ops/shape.ts';
import { adaptiveAvgPool2d } from '../engine/ops/pool.ts';
import * as nn from '../engine/nn/index.ts';
import { resolveOptions, roundHalfEven, initConvBn, chain, type ModelOptions } from './common.ts';

const conv3x3 = (inp: number, out: number, stride: number, rng: Rng) => new nn.Conv2d(inp, out, 3, { stride, padding: 1, bias: false, rng });
const conv1x1 = (inp: number, out: number, stride: number, rng: Rng) => new nn.Conv2d(inp, out, 1, { stride, bias: false, rng });

/** downsample = Sequential(conv1x1 stride s, BN), as torchvision's _make_layer builds it. */
function downsample(inp: number, out: number, stride: number, rng: Rng): nn.Sequential {
  return new nn.Sequential(conv1x1(inp, out, stride, rng), new nn.BatchNorm2d(out));
}

/** Residual tail shared by both blocks: relu(out + identity). */
function residual(out: Tensor, x: Tensor, ds: nn.Sequential | null): Tensor {
  const identity = ds ? ds.call(x) : x;
  return addRelu(out, identity);
}

export class BasicBlock extends nn.Module {
  static readonly expansion = 1;
  readonly conv1: nn.Conv2d;
  readonly bn1: nn.BatchNorm2d;
  readonly conv2: nn.Conv2d;
  readonly bn2: nn.BatchNorm2d;
  readonly downsample: nn.Sequential | null;
  constructor(inplanes: number, planes: number, stride: number, ds: nn.Sequential | null, rng: Rng) {
    super();
    this.conv1 = this.module('conv1', conv3x3(inplanes, planes, stride, rng));
    this.bn1 = this.module('bn1', new nn.BatchNorm2d(planes, { activation: 'relu' }));
    this.conv2 = this.module('conv2', conv3x3(planes, planes, 1, rng));
    this.bn2 = this.module('bn2', new nn.BatchNorm2d(planes));
    this.downsample = ds ? this.module('downsample', ds) : null;
  }
  override forward(x: Tensor): Tensor {
    const out = chain(x, (t) => this.conv1.call(t), (t) => this.bn1.call(t), (t) => this.conv2.call(t), (t) => this.bn2.call(t));
    return residual(out, x, this.downsample);
  }
}

export class Bottleneck extends nn.Module {
  static readonly expansion = 4;
  readonly conv1: nn.Conv2d;
  readonly bn1: nn.BatchNorm2d;
  readonly conv2: nn.Conv2d;
  readonly bn2: nn.BatchNorm2d;
  readonly conv3: nn.Conv2d;
  readonly bn3: nn.BatchNorm2d;
  readonly downsample: nn.Sequential | null;
  constructor(inplanes: number, planes: number, stride: number, ds: nn.Sequential | null, rng: Rng) {
    super();
    const width = planes; // base_width 64, groups 1
    this.conv1 = this.module('conv1', conv1x1(inplanes, width, 1, rng));
    this.bn1 = this.module('bn1', new nn.BatchNorm2d(width, { activation: 'relu' }));
    this.conv2 = this.module('conv2', conv3x3(width, width, stride, rng));
    this.bn2 = this.module('bn2', new nn.BatchNorm2d(width, { activation: 'relu' }));
    this.conv3 = this.module('conv3', conv1x1(width, planes * Bottleneck.expansion, 1, rng));
    this.bn3 = this.module('bn3', new nn.BatchNorm2d(planes * Bottleneck.expansion));
    this.downsample = ds ? this.module('downsample', ds) : null;
  }
  override forward(x: Tensor): Tensor {
    const out = chain(
      x,
      (t) => this.conv1.call(t),
      (t) => this.bn1.call(t),
      (t) => this.conv2.call(t),
      (t) => this.bn2.call(t),
      (t) => this.conv3.call(t),
      (t) => this.bn3.call(t),
    );
    return residual(out, x, this.downsample);
  }
}

type BlockClass = typeof BasicBlock | typeof Bottleneck;

export const RESNET_LAYERS = {
  resnet18: { block: BasicBlock, layers: [2, 2, 2, 2] },
  resnet34: { block: BasicBlock, layers: [3, 4, 6, 3] },
  resnet50: { block: Bottleneck, layers: [3, 4, 6, 3] },
} as const;
export type ResNetName = keyof typeof RESNET_LAYERS;

export class ResNet extends nn.Module {
  readonly conv1: nn.Conv2d;
  readonly bn1: nn.BatchNorm2d;
  readonly maxpool: nn.MaxPool2d | nn.Identity;
  readonly layer1: nn.Sequential;
  readonly layer2: nn.Sequential;
  readonly layer3: nn.Sequential;
  readonly layer4: nn.Sequential;
  readonly fc: nn.Linear;
  /** channels entering fc */
  readonly numFeatures: number;

  constructor(
    readonly arch: ResNetName,
    opts: ModelOptions = {},
  ) {
    super();
    const spec = RESNET_LAYERS[arch];
    if (!spec) throw new RangeError(`ResNet: unknown architecture "${arch}" (${Object.keys(RESNET_LAYERS).join(', ')})`);
    const o = resolveOptions(arch, opts);
    const rng = o.rng;
    const block: BlockClass = spec.block;
    const b = roundHalfEven(64 * o.width);
    if (b < 1) throw new RangeError(`${arch}: width ${o.width} leaves no channels (round(64 * width) = ${b})`);
    this.conv1 = this.module('conv1', o.smallInput ? conv3x3(o.inChannels, b, 1, rng) : new nn.Conv2d(o.inChannels, b, 7, { stride: 2, padding: 3, bias: false, rng }));
    this.bn1 = this.module('bn1', new nn.BatchNorm2d(b, { activation: 'relu' }));
    this.maxpool = this.module('maxpool', o.smallInput ? new nn.Identity() : new nn.MaxPool2d(3, { stride: 2, padding: 1 }));
    let inplanes = b;
    const makeLayer = (planes: number, blocks: number, stride: number): nn.Sequential => {
      const out = planes * block.expansion;
      const ds = stride !== 1 || inplanes !== out ? downsample(inplanes, out, stride, rng) : null;
      const seq = new nn.Sequential(new block(inplanes, planes, stride, ds, rng));
      inplanes = out;
      for (let i = 1; i < blocks; i++) seq.add(new block(inplanes, planes, 1, null, rng));
      return seq;
    };
    this.layer1 = this.module('layer1', makeLayer(b, spec.layers[0], 1));
    this.layer2 = this.module('layer2', makeLayer(2 * b, spec.layers[1], 2));
    this.layer3 = this.module('layer3', makeLayer(4 * b, spec.layers[2], 2));
    this.layer4 = this.module('layer4', makeLayer(8 * b, spec.layers[3], 2));
    this.numFeatures = 8 * b * block.expansion;
    this.fc = this.module('fc', new nn.Linear(this.numFeatures, o.numClasses, { rng })); // nn.Linear's default init, as torchvision
    initConvBn(this, 'fan_out', rng);
  }

  /** Pooled penultimate features [N, numFeatures] (everything before fc). */
  forwardFeatures(x: Tensor): Tensor {
    return chain(
      x,
      (t) => this.conv1.call(t),
      (t) => this.bn1.call(t),
      (t) => (this.maxpool instanceof nn.Identity ? t : this.maxpool.call(t)),
      (t) => this.layer1.call(t),
      (t) => this.layer2.call(t),
      (t) => this.layer3.call(t),
      (t) => this.layer4.call(t),
      (t) => adaptiveAvgPool2d(t, 1),
      (t) => flatten(t, 1),
    );
  }

  override forward(x: Tensor): Tensor {
    return chain(x, (t) => this.forwardFeatures(t), (t) => this.fc.call(t));
  }
}

export const resnet18 = (o: ModelOptions = {}): ResNet => new ResNet('resnet18', o);
export const resnet34 = (o: ModelOptions = {}): ResNet => new ResNet('resnet34', o);
export const resnet50 = (o: ModelOptions = {}): ResNet => new ResNet('resnet50', o);

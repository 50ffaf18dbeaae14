// torchvision DenseNet-121 (growth 32, blocks 6-12-24-16, bn_size 4, compression 0.5,
// drop_rate 0) with the width / smallInput / inChannels options of
// test/fixtures/torch/README.md. Names, order and init are torchvision's; each pre-activation
// norm -> relu pair is one fused BN+ReLU kernel. `features` ends with norm5 WITHOUT a ReLU, as
// in torchvision (forward applies the ReLU, then global pooling and the classifier).
import type { Tensor, Rng } from '../engine/tensor.ts';
import { relu } from '../engine/ops/unary.ts';
import { flatten } from '../engine/ops/shape.ts';
import * as rk from '../engine/index.ts'; // rk.concat
import { adaptiveAvgPool2d } from '../engine/ops/pool.ts';
import * as nn from '../engine/nn/index.ts';
import { resolveOptions, roundHalfEven, initConvBn, chain, type ModelOptions } from './common.ts';

/** norm1 -> relu -> conv1 (1x1, to bnSize*growth) -> norm2 -> relu -> conv2 (3x3, to growth) on the concatenated inputs. */
export class DenseLayer extends nn.Module<Tensor[], Tensor> {
  readonly norm1: nn.BatchNorm2d;
  readonly conv1: nn.Conv2d;
  readonly norm2: nn.BatchNorm2d;
  readonly conv2: nn.Conv2d;
  constructor(inFeatures: number, growth: number, bnSize: number, rng: Rng) {
    super();
    this.norm1 = this.module('norm1', new nn.BatchNorm2d(inFeatures, { activation: 'relu' }));
    this.conv1 = this.module('conv1', new nn.Conv2d(inFeatures, bnSize * growth, 1, { bias: false, rng }));
    this.norm2 = this.module('norm2', new nn.BatchNorm2d(bnSize * growth, { activation: 'relu' }));
    this.conv2 = this.module('conv2', new nn.Conv2d(bnSize * growth, growth, 3, { padding: 1, bias: false, rng }));
  }
  override forward(inputs: Tensor[]): Tensor {
    const x = inputs.length === 1 ? inputs[0] : rk.concat(inputs, 1);
    return chain(x, (t) => this.norm1.call(t), (t) => this.conv1.call(t), (t) => this.norm2.call(t), (t) => this.conv2.call(t));
  }
}

/** denselayer1..L; returns all features concatenated along channels, oldest first. */
export class DenseBlock extends nn.Module {
  readonly layers: DenseLayer[] = [];
  constructor(numLayers: number, inFeatures: number, growth: number, bnSize: number, rng: Rng) {
    super();
    for (let i = 0; i < numLayers; i++) this.layers.push(this.module(`denselayer${i + 1}`, new DenseLayer(inFeatures + i * growth, growth, bnSize, rng)));
  }
  override forward(x: Tensor): Tensor {
    // One fused op (engine/ops/dense-block.ts: one growing feature buffer, no per-layer concat);
    // layer by layer only when a forward hook must see a layer's own call (Grad-CAM on a layer).
    if (this.namedModules().some(([n, m]) => n !== '' && m.hasForwardHooks)) return this.forwardLayers(x);
    return rk.denseBlock(
      x,
      this.layers.map((l) => ({
        norm1: l.norm1.nextCall(),
        norm2: l.norm2.nextCall(),
        norm1Weight: l.norm1.weight!,
        norm1Bias: l.norm1.bias!,
        conv1Weight: l.conv1.weight,
        norm2Weight: l.norm2.weight!,
        norm2Bias: l.norm2.bias!,
        conv2Weight: l.conv2.weight,
      })),
    );
  }

  /** The torchvision formulation: each layer on the concatenation of all earlier features. */
  forwardLayers(x: Tensor): Tensor {
    const feats = [x];
    for (const l of this.layers) feats.push(l.call(feats));
    return rk.concat(feats, 1);
  }
}

/** norm -> relu -> conv 1x1 -> AvgPool2d(2, 2). */
export class Transition extends nn.Module {
  readonly norm: nn.BatchNorm2d;
  readonly conv: nn.Conv2d;
  readonly pool: nn.AvgPool2d;
  constructor(inFeatures: number, outFeatures: number, rng: Rng) {
    super();
    this.norm = this.module('norm', new nn.BatchNorm2d(inFeatures, { activation: 'relu' }));
    this.conv = this.module('conv', new nn.Conv2d(inFeatures, outFeatures, 1, { bias: false, rng }));
    this.pool = this.module('pool', new nn.AvgPool2d(2, { stride: 2 }));
  }
  override forward(x: Tensor): Tensor {
    return chain(x, (t) => this.norm.call(t), (t) => this.conv.call(t), (t) => this.pool.call(t));
  }
}

export interface DenseNetConfig {
  growthRate: number;
  blockConfig: readonly number[];
  numInitFeatures: number;
  bnSize: number;
}

export class DenseNet extends nn.Module {
  readonly features: nn.Sequential;
  readonly classifier: nn.Linear;
  readonly numFeatures: number;
  readonly config: DenseNetConfig;

  constructor(opts: ModelOptions = {}, blockConfig: readonly number[] = [6, 12, 24, 16], name = 'densenet121') {
    super();
    const o = resolveOptions(name, opts);
    const rng = o.rng;
    const g = roundHalfEven(32 * o.width);
    if (g < 1) throw new RangeError(`${name}: width ${o.width} leaves no channels (growth round(32 * width) = ${g})`);
    this.config = { growthRate: g, blockConfig, numInitFeatures: 2 * g, bnSize: 4 };
    const f = (this.features = this.module('features', new nn.Sequential()));
    const c0 = 2 * g;
    f.add('conv0', o.smallInput ? new nn.Conv2d(o.inChannels, c0, 3, { padding: 1, bias: false, rng }) : new nn.Conv2d(o.inChannels, c0, 7, { stride: 2, padding: 3, bias: false, rng }));
    f.add('norm0', new nn.BatchNorm2d(c0, { activation: 'relu' })); // relu0 fused
    if (!o.smallInput) f.add('pool0', new nn.MaxPool2d(3, { stride: 2, padding: 1 }));
    let c = c0;
    blockConfig.forEach((n, i) => {
      f.add(`denseblock${i + 1}`, new DenseBlock(n, c, g, 4, rng));
      c += n * g;
      if (i !== blockConfig.length - 1) {
        f.add(`transition${i + 1}`, new Transition(c, Math.floor(c / 2), rng));
        c = Math.floor(c / 2);
      }
    });
    f.add('norm5', new nn.BatchNorm2d(c));
    this.numFeatures = c;
    this.classifier = this.module('classifier', new nn.Linear(c, o.numClasses, { rng }));
    // torchvision: kaiming_normal_ (fan_in) convs, BN 1/0, Linear bias 0 (weight keeps the default init)
    initConvBn(this, 'fan_in', rng);
    nn.init.zeros(this.classifier.bias!);
  }

  /** Pooled penultimate features [N, numFeatures]: relu(features(x)), global average pool, flatten. */
  forwardFeatures(x: Tensor): Tensor {
    return chain(x, (t) => this.features.call(t), relu, (t) => adaptiveAvgPool2d(t, 1), (t) => flatten(t, 1));
  }

  override forward(x: Tensor): Tensor {
    return chain(x, (t) => this.forwardFeatures(t), (t) => this.classifier.call(t));
  }
}

export const densenet121 = (o: ModelOptions = {}): DenseNet => new DenseNet(o);

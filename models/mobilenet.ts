// torchvision MobileNetV2 (inverted residuals, expansion 6, depthwise 3x3, ReLU6, width_mult
// with the round-to-8 _make_divisible rule, last conv 1280 * max(1, width)), with the
// smallInput / inChannels options of test/fixtures/torch/README.md. Names, order and init are
// torchvision's; every Conv-BN-ReLU6 runs its BN and ReLU6 as one fused kernel.
import type { Tensor, Rng } from '../engine/tensor.ts';
import { add } from '../engine/ops/binary.ts';
import { flatten } from '../engine/ops/shape.ts';
import { adaptiveAvgPool2d } from '../engine/ops/pool.ts';
import * as nn from '../engine/nn/index.ts';
import { resolveOptions, makeDivisible, roundHalfEven, initConvBn, chain, type ModelOptions } from './common.ts';

/** Conv2dNormActivation: Sequential(conv (no bias), BN with fused ReLU6); PyTorch's ReLU6 at index 2 has no state. */
function convBnReLU6(inp: number, out: number, k: number, stride: number, groups: number, rng: Rng): nn.Sequential {
  return new nn.Sequential(
    new nn.Conv2d(inp, out, k, { stride, padding: (k - 1) >> 1, groups, bias: false, rng }),
    new nn.BatchNorm2d(out, { activation: 'relu6' }),
  );
}

export class InvertedResidual extends nn.Module {
  readonly conv: nn.Sequential;
  readonly useResConnect: boolean;
  constructor(inp: number, oup: number, stride: number, expandRatio: number, rng: Rng) {
    super();
    if (stride !== 1 && stride !== 2) throw new RangeError(`InvertedResidual: stride must be 1 or 2, got ${stride}`);
    const hidden = roundHalfEven(inp * expandRatio); // Python's int(round(inp * t))
    this.useResConnect = stride === 1 && inp === oup;
    const layers: nn.Module[] = [];
    if (expandRatio !== 1) layers.push(convBnReLU6(inp, hidden, 1, 1, 1, rng)); // pw
    layers.push(convBnReLU6(hidden, hidden, 3, stride, hidden, rng)); // dw
    layers.push(new nn.Conv2d(hidden, oup, 1, { bias: false, rng }), new nn.BatchNorm2d(oup)); // pw-linear
    this.conv = this.module('conv', new nn.Sequential(...layers));
  }
  override forward(x: Tensor): Tensor {
    return this.useResConnect ? chain(x, (t) => this.conv.call(t), (t) => add(x, t)) : this.conv.call(x);
  }
}

/** [expansion t, channels c, repeats n, first stride s] */
export const MOBILENET_V2_SETTINGS: readonly (readonly [number, number, number, number])[] = [
  [1, 16, 1, 1],
  [6, 24, 2, 2],
  [6, 32, 3, 2],
  [6, 64, 4, 2],
  [6, 96, 3, 1],
  [6, 160, 3, 2],
  [6, 320, 1, 1],
];

export interface MobileNetV2Options extends ModelOptions {
  /** classifier dropout probability (default 0.2) */
  dropout?: number;
}

export class MobileNetV2 extends nn.Module {
  readonly features: nn.Sequential;
  readonly classifier: nn.Sequential;
  readonly lastChannel: number;

  constructor(opts: MobileNetV2Options = {}) {
    super();
    const o = resolveOptions('mobilenet_v2', opts);
    const rng = o.rng;
    let input = makeDivisible(32 * o.width);
    this.lastChannel = makeDivisible(1280 * Math.max(1, o.width));
    const f = (this.features = this.module('features', new nn.Sequential()));
    f.add(convBnReLU6(o.inChannels, input, 3, o.smallInput ? 1 : 2, 1, rng));
    for (const [t, c, n, s] of MOBILENET_V2_SETTINGS) {
      const out = makeDivisible(c * o.width);
      for (let i = 0; i < n; i++) {
        f.add(new InvertedResidual(input, out, i === 0 ? s : 1, t, rng));
        input = out;
      }
    }
    f.add(convBnReLU6(input, this.lastChannel, 1, 1, 1, rng));
    const dropoutP = opts.dropout ?? 0.2;
    this.classifier = this.module('classifier', new nn.Sequential(new nn.Dropout(dropoutP, { seed: Math.floor(rng.uniform() * 2 ** 31) }), new nn.Linear(this.lastChannel, o.numClasses, { rng })));
    // torchvision: kaiming_normal_ fan_out convs (bias 0), BN 1/0, Linear N(0, 0.01) with bias 0
    initConvBn(this, 'fan_out', rng);
    const fc = this.classifier.at<nn.Linear>(1);
    nn.init.normal(fc.weight, 0, 0.01, { rng });
    nn.init.zeros(fc.bias!);
  }

  /** channels entering the classifier (= lastChannel) */
  get numFeatures(): number {
    return this.lastChannel;
  }

  /** Pooled penultimate features [N, numFeatures]: features, global average pool, flatten. */
  forwardFeatures(x: Tensor): Tensor {
    return chain(x, (t) => this.features.call(t), (t) => adaptiveAvgPool2d(t, 1), (t) => flatten(t, 1));
  }

  override forward(x: Tensor): Tensor {
    return chain(x, (t) => this.forwardFeatures(t), (t) => this.classifier.call(t));
  }
}

export const mobilenetV2 = (o: MobileNetV2Options = {}): MobileNetV2 => new MobileNetV2(o);

// Parameterless modules: activations, Identity, Flatten.
import type { Tensor } from '../tensor.ts';
import { relu, relu6, sigmoid, tanh } from '../ops/unary.ts';
import { reshape, flatten } from '../ops/shape.ts';
import { Module } from './module.ts';

export class ReLU extends Module {
  override forward(x: Tensor): Tensor {
    return relu(x);
  }
}

export class ReLU6 extends Module {
  override forward(x: Tensor): Tensor {
    return relu6(x);
  }
}

export class Sigmoid extends Module {
  override forward(x: Tensor): Tensor {
    return sigmoid(x);
  }
}

export class Tanh extends Module {
  override forward(x: Tensor): Tensor {
    return tanh(x);
  }
}

/** Returns a new handle on its input (a free view), so callers may dispose input and output independently. */
export class Identity extends Module {
  override forward(x: Tensor): Tensor {
    return reshape(x, x.shape);
  }
}

/** Flattens dims startDim..end into one (default: everything but the batch). */
export class Flatten extends Module {
  constructor(readonly startDim = 1) {
    super();
  }
  override forward(x: Tensor): Tensor {
    return flatten(x, this.startDim);
  }
}

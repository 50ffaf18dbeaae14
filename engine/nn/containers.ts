// Sequential: children named '0', '1', ... (or given names), applied in order.
import type { Tensor } from '../tensor.ts';
import { Module, type AnyModule } from './module.ts';

export class Sequential extends Module {
  /** new Sequential(a, b, c) names children '0', '1', '2'; Sequential.named([['conv0', m], ...]) keeps given names. */
  constructor(...mods: Module[]) {
    super();
    mods.forEach((m, i) => this.module(String(i), m));
  }

  static named(entries: Iterable<readonly [string, Module]>): Sequential {
    const s = new Sequential();
    for (const [n, m] of entries) s.add(n, m);
    return s;
  }

  /** Appends a child under `name` (default: its index). */
  add(name: string | Module, m?: Module): this {
    if (typeof name === 'string') this.module(name, m!);
    else this.module(String(this.length), name);
    return this;
  }

  get length(): number {
    return this.children().length;
  }

  /** The i-th child (negative counts from the end). */
  at<M extends AnyModule = AnyModule>(i: number): M {
    const c = this.children();
    const m = c[i < 0 ? i + c.length : i];
    if (!m) throw new RangeError(`Sequential.at(${i}): ${c.length} children`);
    return m as M;
  }

  [Symbol.iterator](): Iterator<AnyModule> {
    return this.children()[Symbol.iterator]();
  }

  /** Each intermediate is disposed as soon as the next child has consumed it (peak memory: two activations plus the graph). */
  override forward(x: Tensor): Tensor {
    let h = x;
    for (const m of this.children()) {
      const y = m.call(h) as Tensor;
      if (h !== x && y !== h) h.dispose();
      h = y;
    }
    return h;
  }
}

// Reverse-mode autograd: the whole contract on one screen.
//
// Each differentiable op call with a grad-requiring input creates a Node holding
//   parents  – the nodes of its inputs (null where no gradient flows),
//   saved    – detached handles on the tensors its backward needs,
//   backward – grad of output -> grads of inputs.
// Leaves that require grad own an AccumulateGrad node (isLeaf) that adds into tensor.grad.
// Nodes are reference counted (by tensor handles and child nodes): when the last reference
// goes, the node frees its saved tensors, so an unused graph never leaks. backward() walks
// the graph iteratively in reverse topological order and frees each node's saved tensors as
// soon as it has run (no retain_graph).
import type { Tensor } from './tensor.ts';

export type BackwardFn = (grad: Tensor, node: Node) => (Tensor | null)[];

export class Node {
  refs = 0;
  /** true once backward has consumed the saved tensors */
  consumed = false;
  constructor(
    readonly name: string,
    readonly parents: (Node | null)[],
    public saved: Tensor[],
    readonly backward: BackwardFn | null,
    /** op parameters and input shapes, for the backward function */
    readonly ctx: { params: unknown; inputShapes: (readonly number[])[]; inputDtypes: string[] },
    /** the leaf tensor whose .grad this node accumulates into */
    readonly leaf: Tensor | null = null,
  ) {
    for (const p of parents) if (p) p.refs++;
  }
  get isLeaf(): boolean {
    return this.leaf !== null;
  }
}

export function nodeRef(n: Node): void {
  n.refs++;
}

/** Drops one reference; frees nodes (iteratively) whose count reaches zero. */
export function nodeUnref(n: Node): void {
  const work = [n];
  while (work.length) {
    const m = work.pop()!;
    if (--m.refs > 0) continue;
    for (const t of m.saved) t.dispose();
    m.saved = [];
    for (const p of m.parents) if (p) work.push(p);
  }
}

let gradEnabled = true;
export const isGradEnabled = (): boolean => gradEnabled;

/** Runs fn without recording a graph (evaluation, optimizer steps, backward itself). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export async function noGradAsync<T>(fn: () => Promise<T>): Promise<T> {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return await fn();
  } finally {
    gradEnabled = prev;
  }
}

/** Reverse topological order from root (iterative DFS: graphs are deep). */
function topoOrder(root: Node): Node[] {
  const order: Node[] = [];
  const seen = new Set<Node>([root]);
  const stack: [Node, number][] = [[root, 0]];
  while (stack.length) {
    const top = stack[stack.length - 1];
    const [node, i] = top;
    if (i < node.parents.length) {
      top[1]++;
      const p = node.parents[i];
      if (p && !seen.has(p)) {
        seen.add(p);
        stack.push([p, 0]);
      }
    } else {
      stack.pop();
      order.push(node);
    }
  }
  return order.reverse();
}

// Injected by ops/index.ts to avoid an import cycle: grad accumulation needs the add kernel.
let accumulate: ((into: Tensor | null, g: Tensor) => Tensor) | null = null;
let seedOnes: ((like: Tensor) => Tensor) | null = null;
let scoped: (<T>(fn: () => T) => T) | null = null;
let keepTensor: ((t: Tensor) => void) | null = null;
export function installAutogradKernels(k: {
  accumulate: (into: Tensor | null, g: Tensor) => Tensor;
  ones: (like: Tensor) => Tensor;
  tidy: <T>(fn: () => T) => T;
  keep: (t: Tensor) => void;
}): void {
  accumulate = k.accumulate;
  seedOnes = k.ones;
  scoped = k.tidy;
  keepTensor = k.keep;
}

/** Gives every returned gradient its own handle (a backward may return g itself, or one tensor twice). */
function distinct(grads: (Tensor | null)[], g: Tensor): (Tensor | null)[] {
  const seen = new Set<Tensor>();
  return grads.map((t) => {
    if (!t) return null;
    if (t === g || seen.has(t)) return t.detach();
    seen.add(t);
    return t;
  });
}

export function runBackward(root: Tensor, seed?: Tensor): void {
  if (!root.node) throw new Error(`backward: ${root.describe()} does not require grad (no input of the ops that made it requires grad, or it was made under noGrad)`);
  if (!seed && root.size !== 1) throw new Error(`backward: ${root.describe()} is not a scalar; pass a seed gradient of the same shape`);
  if (seed && seed.shape.join() !== root.shape.join()) throw new Error(`backward: seed ${seed.describe()} does not match ${root.describe()}`);
  const order = topoOrder(root.node);
  for (const n of order) if (n.consumed) throw new Error(`backward: the graph through ${n.name} was already freed by an earlier backward() (saved tensors are released after use)`);
  noGrad(() =>
    scoped!(() => {
      const grads = new Map<Node, Tensor>();
      grads.set(root.node!, seed ? seed.detach() : seedOnes!(root));
      for (const node of order) {
        const g = grads.get(node);
        grads.delete(node);
        if (!g) continue;
        if (node.leaf) {
          const leaf = node.leaf;
          if (!leaf.disposed) {
            const next = accumulate!(leaf.grad, g);
            if (next !== leaf.grad) {
              keepTensor!(next);
              leaf.grad?.dispose();
              leaf.grad = next;
            }
          }
          g.dispose();
          continue;
        }
        const inGrads = scoped!(() => distinct(node.backward!(g, node), g));
        g.dispose();
        node.parents.forEach((p, i) => {
          const gi = inGrads[i];
          if (!gi) return;
          if (!p) return gi.dispose();
          const prev = grads.get(p);
          if (prev) {
            const next = accumulate!(prev, gi);
            if (next !== prev) prev.dispose();
            grads.set(p, next);
            gi.dispose();
          } else grads.set(p, gi);
        });
        for (const t of node.saved) t.dispose();
        node.saved = [];
        node.consumed = true;
      }
    }),
  );
}

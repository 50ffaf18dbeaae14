// Label checks shared by the loaders: one stray label must not silently change the task (a 7 in a
// binary set would otherwise make 8 classes, and label noise would move training labels into the
// empty ones). Errors name the file, split, row and value. No file access.
import type { SplitName } from './dataset.ts';

/** Where a row came from, for error messages: e.g. "file.npz: member val_labels.npy row 12". */
export type RowName = (split: SplitName, row: number) => string;

/** Every single-label value is an integer class index in [0, C). */
export function checkLabelRange(labels: ArrayLike<number>, split: SplitName, C: number, rowName: RowName, what: string): void {
  for (let i = 0; i < labels.length; i++) {
    const v = labels[i];
    if (!Number.isInteger(v) || v < 0 || v >= C) throw new Error(`${rowName(split, i)}: label ${v} is not one of ${what} (0..${C - 1})`);
  }
}

/**
 * Classes inferred from train labels must be 0..max without gaps: a class index that never occurs
 * below a larger one is almost always a stray label. Returns the class count (max + 1).
 */
export function inferClassCount(train: ArrayLike<number>, rowName: RowName): number {
  let max = -1;
  for (let i = 0; i < train.length; i++) {
    const v = train[i];
    if (!Number.isInteger(v) || v < 0) throw new Error(`${rowName('train', i)}: class labels must be non-negative integers, found ${v}`);
    if (v > max) max = v;
  }
  const seen = new Uint8Array(max + 1);
  for (let i = 0; i < train.length; i++) seen[train[i]] = 1;
  const gap = seen.indexOf(0);
  if (gap >= 0) {
    let next = gap;
    while (!seen[next]) next++;
    const row = Array.prototype.indexOf.call(train, next) as number;
    const gapEnd = next - 1;
    throw new Error(
      `${rowName('train', row)}: label ${next}, but class${gapEnd > gap ? `es ${gap}..${gapEnd} never occur` : ` ${gap} never occurs`} in train ` +
        `(classes are inferred from the train labels as 0..max; a stray label would add empty classes)`,
    );
  }
  return max + 1;
}

/** Every class in val/test occurs in train (a model cannot learn a class it never sees). */
export function checkClassesInTrain(splits: Record<SplitName, ArrayLike<number>>, C: number, rowName: RowName, className: (k: number) => string): void {
  const inTrain = new Uint8Array(C);
  for (let i = 0; i < splits.train.length; i++) inTrain[splits.train[i]] = 1;
  for (const sp of ['val', 'test'] as const) {
    const lab = splits[sp];
    for (let i = 0; i < lab.length; i++)
      if (!inTrain[lab[i]]) throw new Error(`${rowName(sp, i)}: label ${lab[i]} (${className(lab[i])}) does not occur in the train split`);
  }
}

// Writing a line plot (plot.ts) as a PNG file. Node only.
import { writeFileAtomic } from './data/node-files.ts';
import { renderLinePlot, type LinePlotOptions } from './plot.ts';

/** Write a line plot as PNG (atomically: temp file then rename). */
export function linePlotPng(path: string, opts: LinePlotOptions): void {
  writeFileAtomic(path, renderLinePlot(opts).toPng());
}

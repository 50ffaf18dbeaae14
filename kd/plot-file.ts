// Writing plots (plot.ts) as files: NAME.png and, beside it, NAME.svg. Node only.
import { writeFileAtomic } from './data/node-files.ts';
import { renderFigure, type FigureOptions, type LinePlotOptions } from './plot.ts';

/** Write a figure (or a single plot) as PNG plus an SVG of the same layout, each atomically. */
export function writePlotFiles(pngPath: string, fig: FigureOptions | LinePlotOptions): { png: string; svg: string } {
  const f: FigureOptions = 'panels' in fig ? fig : { panels: [fig], panelWidth: fig.width, height: fig.height };
  const r = renderFigure(f);
  const svg = pngPath.replace(/\.png$/i, '') + '.svg';
  writeFileAtomic(pngPath, r.png);
  writeFileAtomic(svg, r.svg);
  return { png: pngPath, svg };
}

/** A single line plot as PNG (and SVG beside it). */
export function linePlotPng(path: string, opts: LinePlotOptions): void {
  writePlotFiles(path, opts);
}

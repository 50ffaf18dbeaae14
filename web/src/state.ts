// What the page did last, readable from outside (window.roskdPage): the browser test reads the
// exact probabilities and the run summary from here rather than from rounded table cells.
export interface PageState {
  ready: boolean;
  gpu: string | null;
  gpuError: string | null;
  model: { name: string; arch: string; classes: string[] } | null;
  predictions: { file: string; prediction: string | string[]; confidence: number; probabilities: Record<string, number> }[];
  skipped: { file: string; reason: string }[];
  run: { state: 'idle' | 'running' | 'done' | 'stopped' | 'failed'; message: string; imagesPerSec: number; secs: number; images: number; files: string[] };
}

export const pageState: PageState = {
  ready: false, gpu: null, gpuError: null, model: null, predictions: [], skipped: [],
  run: { state: 'idle', message: '', imagesPerSec: 0, secs: 0, images: 0, files: [] },
};
(globalThis as unknown as { roskdPage: PageState }).roskdPage = pageState;

// The page: tabs, WebGPU start-up (with the adapter panel), the Classify and Train views.
import * as rk from '../../engine/index.ts';
import { $ } from './dom.ts';
import { pageState } from './state.ts';
import { showAdapter, noGpuAdvice, tooSmall } from './adapter-view.ts';
import { initClassify } from './classify-view.ts';
import { initTrain } from './train-view.ts';

function initTabs(): void {
  const tabs = [...document.querySelectorAll<HTMLButtonElement>('[role=tab]')];
  const select = (t: HTMLButtonElement) => {
    for (const o of tabs) {
      const on = o === t;
      o.setAttribute('aria-selected', String(on));
      o.tabIndex = on ? 0 : -1;
      $(o.getAttribute('aria-controls')!).hidden = !on;
    }
    t.focus();
  };
  tabs.forEach((t, i) => {
    t.addEventListener('click', () => select(t));
    t.addEventListener('keydown', (e) => {
      const k = e.key === 'ArrowRight' ? 1 : e.key === 'ArrowLeft' ? -1 : 0;
      if (k) select(tabs[(i + k + tabs.length) % tabs.length]);
    });
  });
}

async function main(): Promise<void> {
  initTabs();
  initClassify();
  initTrain();
  const banner = $('gpu-banner');
  try {
    const g = await rk.init();
    pageState.gpu = g.info.description || [g.info.vendor, g.info.architecture, g.info.device].filter(Boolean).join(' ') || 'unnamed adapter';
    showAdapter(g);
    const small = tooSmall(g);
    if (small.length) {
      banner.textContent = `The WebGPU adapter is too small for this page (${small.join('; ')}): see the Adapter tab.`;
      banner.hidden = false;
    }
  } catch (e) {
    pageState.gpuError = noGpuAdvice(e);
    showAdapter(null, e);
    banner.textContent = pageState.gpuError;
    banner.hidden = false;
    for (const b of document.querySelectorAll<HTMLButtonElement>('#view-classify button, #train-start')) b.disabled = true;
  }
  pageState.ready = true;
}

void main();

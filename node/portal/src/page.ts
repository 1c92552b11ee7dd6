// Pieces every screen uses: its h1 and the "loading / failed" states.

import { Children, button, h, replace } from './dom.js';
import { errorBox } from './errors.js';

/** The screen's h1 (focusable, so navigation can move focus to it) and the tab title. */
export function pageTitle(title: string, ...extra: Children[]): HTMLElement {
  document.title = `${title} — CommonRock portal`;
  return h('header', { class: 'page-head' }, h('h1', { tabindex: -1 }, title), ...extra);
}

export function loading(what = 'Loading…'): HTMLElement {
  return h('p', { class: 'loading', role: 'status' }, what);
}

/**
 * Fills `slot` with `load()`'s rendering; while it runs, "Loading…"; when it fails, the error
 * and a "Try again" button.
 */
export async function fill(slot: HTMLElement, load: () => Promise<Children>): Promise<void> {
  replace(slot, loading());
  try {
    replace(slot, await load());
  } catch (e) {
    replace(slot, errorBox(e), button('Try again', () => void fill(slot, load), { class: 'retry' }));
  }
}

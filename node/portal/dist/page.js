import { button, h, replace } from './dom.js';
import { errorBox } from './errors.js';
export function pageTitle(title, ...extra) {
  document.title = `${title} — CommonRock portal`;
  return h('header', { class: 'page-head' }, h('h1', { tabindex: -1 }, title), ...extra);
}
export function loading(what = 'Loading…') {
  return h('p', { class: 'loading', role: 'status' }, what);
}
export async function fill(slot, load) {
  replace(slot, loading());
  try {
    replace(slot, await load());
  }
  catch (e) {
    replace(slot, errorBox(e), button('Try again', () => void fill(slot, load), { class: 'retry' }));
  }
}

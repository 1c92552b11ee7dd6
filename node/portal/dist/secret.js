import { button, h } from './dom.js';
async function copy(text, el, feedback) {
  try {
    if (!navigator.clipboard)
      throw new Error('no clipboard');
    await navigator.clipboard.writeText(text);
    feedback.textContent = 'Copied.';
  }
  catch {
    const sel = window.getSelection();
    if (sel) {
      sel.removeAllRanges();
      sel.selectAllChildren(el);
    }
    feedback.textContent = 'Selected: press Ctrl+C (⌘C on a Mac) to copy.';
  }
}
function copyRow(label, name, valueEl, text) {
  const feedback = h('span', { class: 'copy-feedback', role: 'status' });
  const btn = button('Copy', () => void copy(text, valueEl, feedback), {
    'data-testid': `copy-${name}`,
    'aria-label': `Copy ${label.toLowerCase()}`,
  });
  return h('div', { class: 'secret-actions' }, btn, feedback);
}
export function secretPanel(title, items, extra, level = 2) {
  const panel = h('section', { class: 'secret-panel', 'aria-labelledby': 'secret-title', 'data-testid': 'secret-panel', tabindex: -1 }, h(level === 2 ? 'h2' : 'h3', { id: 'secret-title' }, title), h('p', { class: 'once' }, h('strong', null, 'Shown only once. '), 'Copy it now and keep it somewhere safe: it cannot be shown again, and it disappears when you leave this page.'), items.map((it) => {
    const value = h('code', { class: 'secret-value', id: `secret-${it.name}`, 'data-secret': it.name }, it.value);
    return h('div', { class: 'secret-item' }, h('p', { class: 'secret-label' }, it.label), value, copyRow(it.label, it.name, value, it.value));
  }), extra ?? null, h('div', { class: 'actions' }, button('I have saved it — hide', () => panel.remove(), { 'data-testid': 'secret-hide' })));
  return panel;
}
export function recoveryCodesPanel(codes) {
  const listEl = h('ol', { class: 'codes', 'data-testid': 'recovery-codes', id: 'recovery-codes' }, codes.map((c) => h('li', null, h('code', null, c))));
  const all = codes.join('\n');
  const panel = h('section', { class: 'secret-panel', 'aria-labelledby': 'recovery-title', 'data-testid': 'secret-panel', tabindex: -1 }, h('h3', { id: 'recovery-title' }, 'Your recovery codes'), h('p', { class: 'once' }, h('strong', null, 'Shown only once. '), 'Each code logs you in once in place of an authenticator code. Store them offline; they disappear when you leave this page.'), listEl, copyRow('Recovery codes', 'recovery-codes', listEl, all), h('div', { class: 'actions' }, button('I have saved them — hide', () => panel.remove(), { 'data-testid': 'secret-hide' })));
  return panel;
}
export function showPanel(slot, panel) {
  slot.replaceChildren(panel);
  panel.focus();
}

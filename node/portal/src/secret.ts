// The panel for secrets shown once (client keys, secret keys, admin tokens, recovery codes).
// Nothing here stores them: they live in this panel's DOM only, which is dropped when the
// user hides it or navigates away.

import { Children, button, h } from './dom.js';

/** Copies `text`; when the Clipboard API is missing or refused, selects `el` instead. */
async function copy(text: string, el: HTMLElement, feedback: HTMLElement): Promise<void> {
  try {
    if (!navigator.clipboard) throw new Error('no clipboard');
    await navigator.clipboard.writeText(text);
    feedback.textContent = 'Copied.';
  } catch {
    const sel = window.getSelection();
    if (sel) {
      sel.removeAllRanges();
      sel.selectAllChildren(el);
    }
    feedback.textContent = 'Selected: press Ctrl+C (⌘C on a Mac) to copy.';
  }
}

export interface SecretItem {
  /** Visible label, e.g. "Client key". */
  label: string;
  /** Stable name for tests: `data-secret` and the id `secret-<name>`. */
  name: string;
  value: string;
  /** False for values that are not secret (a client id): no "only once" emphasis. */
  secret?: boolean;
}

function copyRow(label: string, name: string, valueEl: HTMLElement, text: string): HTMLElement {
  const feedback = h('span', { class: 'copy-feedback', role: 'status' });
  const btn = button('Copy', () => void copy(text, valueEl, feedback), {
    'data-testid': `copy-${name}`,
    'aria-label': `Copy ${label.toLowerCase()}`,
  });
  return h('div', { class: 'secret-actions' }, btn, feedback);
}

/** A panel showing `items` once, each with a Copy button, and a "hide" button. */
export function secretPanel(title: string, items: SecretItem[], extra?: Children, level: 2 | 3 = 2): HTMLElement {
  const panel: HTMLElement = h(
    'section',
    { class: 'secret-panel', 'aria-labelledby': 'secret-title', 'data-testid': 'secret-panel', tabindex: -1 },
    h(level === 2 ? 'h2' : 'h3', { id: 'secret-title' }, title),
    h(
      'p',
      { class: 'once' },
      h('strong', null, 'Shown only once. '),
      'Copy it now and keep it somewhere safe: it cannot be shown again, and it disappears when you leave this page.',
    ),
    items.map((it) => {
      const value = h('code', { class: 'secret-value', id: `secret-${it.name}`, 'data-secret': it.name }, it.value);
      return h(
        'div',
        { class: 'secret-item' },
        h('p', { class: 'secret-label' }, it.label),
        value,
        copyRow(it.label, it.name, value, it.value),
      );
    }),
    extra ?? null,
    h('div', { class: 'actions' }, button('I have saved it — hide', () => panel.remove(), { 'data-testid': 'secret-hide' })),
  );
  return panel;
}

/** Recovery codes: a list and one Copy button for all of them. */
export function recoveryCodesPanel(codes: string[]): HTMLElement {
  const listEl = h('ol', { class: 'codes', 'data-testid': 'recovery-codes', id: 'recovery-codes' }, codes.map((c) => h('li', null, h('code', null, c))));
  const all = codes.join('\n');
  const panel: HTMLElement = h(
    'section',
    { class: 'secret-panel', 'aria-labelledby': 'recovery-title', 'data-testid': 'secret-panel', tabindex: -1 },
    h('h3', { id: 'recovery-title' }, 'Your recovery codes'),
    h(
      'p',
      { class: 'once' },
      h('strong', null, 'Shown only once. '),
      'Each code logs you in once in place of an authenticator code. Store them offline; they disappear when you leave this page.',
    ),
    listEl,
    copyRow('Recovery codes', 'recovery-codes', listEl, all),
    h('div', { class: 'actions' }, button('I have saved them — hide', () => panel.remove(), { 'data-testid': 'secret-hide' })),
  );
  return panel;
}

/** Puts `panel` into `slot` (replacing a previous one) and moves focus to it. */
export function showPanel(slot: HTMLElement, panel: HTMLElement): void {
  slot.replaceChildren(panel);
  panel.focus();
}

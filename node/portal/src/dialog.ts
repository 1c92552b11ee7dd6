// A modal confirmation built on <dialog>: focus stays inside, Escape cancels.

import { button, checkboxField, h } from './dom.js';

export interface ConfirmOptions {
  title: string;
  message: string;
  confirm: string;
  danger?: boolean;
  /** An optional checkbox, e.g. "Also delete the query definitions that use it". */
  checkbox?: string;
}

export interface Confirmed {
  ok: boolean;
  checked: boolean;
}

export function confirmAction(opts: ConfirmOptions): Promise<Confirmed> {
  return new Promise((resolve) => {
    const box = opts.checkbox ? checkboxField({ label: opts.checkbox, name: 'confirm-option', id: 'confirm-option' }) : null;
    const dlg = h(
      'dialog',
      { class: 'confirm', 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-message', 'data-testid': 'confirm-dialog' },
      h('h2', { id: 'confirm-title' }, opts.title),
      h('p', { id: 'confirm-message' }, opts.message),
      box?.wrap ?? null,
    );
    let settled = false;
    const finish = (ok: boolean): void => {
      if (settled) return;
      settled = true;
      const checked = box?.input.checked ?? false;
      if (dlg.open) dlg.close();
      dlg.remove();
      resolve({ ok, checked });
    };
    const cancel = button('Cancel', () => finish(false), { id: 'confirm-cancel' });
    const ok = button(opts.confirm, () => finish(true), { id: 'confirm-ok', class: opts.danger ? 'danger' : 'primary' });
    dlg.append(h('div', { class: 'actions' }, ok, cancel));
    dlg.addEventListener('close', () => finish(false));
    document.body.append(dlg);
    dlg.showModal();
    cancel.focus();
  });
}

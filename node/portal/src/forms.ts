// Forms that submit with Enter, disable their button while the call runs, and show the
// outcome: success text in a role=status line, failures via errors.ts.

import { Children, h, replace } from './dom.js';
import { clearFieldErrors, showError, showFormError } from './errors.js';

export interface FormParts {
  form: HTMLFormElement;
  /** role=alert container for failures. */
  errors: HTMLElement;
  /** role=status container for success messages. */
  status: HTMLElement;
  submit: HTMLButtonElement;
}

export interface FormOptions {
  id?: string;
  /** Accessible name of the form (e.g. the heading text). */
  label?: string;
  submit: string;
  submitId?: string;
  fields: Children;
  /** Runs on submit; a returned string is announced as success. */
  onSubmit: (parts: FormParts) => Promise<string | void>;
  class?: string;
  extraButtons?: Children;
}

export function form(opts: FormOptions): FormParts {
  const errors = h('div', { class: 'form-errors' });
  const status = h('div', { class: 'form-status', role: 'status', 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', id: opts.submitId ?? null, class: 'primary' }, opts.submit);
  const el = h(
    'form',
    { id: opts.id ?? null, class: opts.class ?? 'stack', 'aria-label': opts.label ?? null, novalidate: true },
    errors,
    opts.fields,
    h('div', { class: 'actions' }, submit, opts.extraButtons ?? null),
    status,
  );
  const parts: FormParts = { form: el, errors, status, submit };
  let running = false;
  el.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (running) return;
    // Browser-side checks (required, min, max, type=email) first, shown by the browser.
    if (!el.checkValidity()) {
      el.reportValidity();
      return;
    }
    running = true;
    submit.disabled = true;
    el.setAttribute('aria-busy', 'true');
    replace(errors);
    replace(status);
    clearFieldErrors(el);
    opts
      .onSubmit(parts)
      .then((msg) => {
        if (msg) replace(status, h('p', { class: 'notice' }, msg));
      })
      .catch((e: unknown) => showFormError(el, errors, e))
      .finally(() => {
        running = false;
        submit.disabled = false;
        el.removeAttribute('aria-busy');
      });
  });
  return parts;
}

/**
 * Runs `action` for a button: disabled while it runs; a failure is shown in `errors`.
 * Resolves to `{value}` on success, null on failure.
 */
export async function run<T>(btn: HTMLButtonElement | null, errors: HTMLElement, action: () => Promise<T>): Promise<{ value: T } | null> {
  if (btn) btn.disabled = true;
  showError(errors);
  try {
    return { value: await action() };
  } catch (e) {
    showError(errors, e);
    return null;
  } finally {
    if (btn) btn.disabled = false;
  }
}

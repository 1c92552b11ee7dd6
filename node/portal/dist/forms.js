import { h, replace } from './dom.js';
import { clearFieldErrors, showError, showFormError } from './errors.js';
export function form(opts) {
  const errors = h('div', { class: 'form-errors' });
  const status = h('div', { class: 'form-status', role: 'status', 'aria-live': 'polite' });
  const submit = h('button', { type: 'submit', id: opts.submitId ?? null, class: 'primary' }, opts.submit);
  const el = h('form', { id: opts.id ?? null, class: opts.class ?? 'stack', 'aria-label': opts.label ?? null, novalidate: true }, errors, opts.fields, h('div', { class: 'actions' }, submit, opts.extraButtons ?? null), status);
  const parts = { form: el, errors, status, submit };
  let running = false;
  el.addEventListener('submit', (ev) => {
    ev.preventDefault();
    if (running)
      return;
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
      if (msg)
        replace(status, h('p', { class: 'notice' }, msg));
    })
      .catch((e) => showFormError(el, errors, e))
      .finally(() => {
      running = false;
      submit.disabled = false;
      el.removeAttribute('aria-busy');
    });
  });
  return parts;
}
export async function run(btn, errors, action) {
  if (btn)
    btn.disabled = true;
  showError(errors);
  try {
    return { value: await action() };
  }
  catch (e) {
    showError(errors, e);
    return null;
  }
  finally {
    if (btn)
      btn.disabled = false;
  }
}

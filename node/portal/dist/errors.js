import { ApiError } from './api.js';
import { h, replace } from './dom.js';
export function errorMessage(e) {
  if (e instanceof ApiError) {
    if (e.network || e.status === 429)
      return e.message;
    let text = e.code ? `${e.message} (${e.code})` : e.message;
    if (e.status === 503 && e.retryAfter !== null)
      text += ` Try again in ${e.retryAfter} s.`;
    return text;
  }
  if (e instanceof Error)
    return `Something went wrong in the page: ${e.message}`;
  return 'Something went wrong.';
}
function issueText(i) {
  const where = i.loc.filter((p, n) => !(n === 0 && (p === 'body' || p === 'query' || p === 'path'))).join('.');
  return where ? `${where}: ${i.msg}` : i.msg;
}
export function errorBox(e, issues) {
  const list = issues ?? (e instanceof ApiError ? e.issues : []);
  return h('div', { class: 'error', role: 'alert', 'data-testid': 'error' }, h('p', null, errorMessage(e)), list.length ? h('ul', null, list.map((i) => h('li', null, issueText(i)))) : null);
}
export function showError(box, e) {
  if (e === undefined) {
    replace(box);
    return;
  }
  replace(box, errorBox(e));
}
export function clearFieldErrors(form) {
  for (const el of Array.from(form.querySelectorAll('.field-error')))
    el.remove();
  for (const el of Array.from(form.querySelectorAll('[aria-invalid="true"]'))) {
    el.removeAttribute('aria-invalid');
    const described = (el.getAttribute('aria-describedby') ?? '')
      .split(' ')
      .filter((id) => id && !id.endsWith('-error'))
      .join(' ');
    if (described)
      el.setAttribute('aria-describedby', described);
    else
      el.removeAttribute('aria-describedby');
  }
}
export function showFormError(form, box, e) {
  clearFieldErrors(form);
  if (!(e instanceof ApiError) || e.issues.length === 0) {
    showError(box, e);
    return;
  }
  const rest = [];
  let first = null;
  for (const issue of e.issues) {
    const name = issue.loc[0] === 'body' ? issue.loc[1] : undefined;
    const input = typeof name === 'string' ? form.querySelector(`[name="${CSS.escape(name)}"]`) : null;
    if (!input || !input.id) {
      rest.push(issue);
      continue;
    }
    const errId = `${input.id}-error`;
    const existing = document.getElementById(errId);
    const msg = issue.loc.length > 2 ? issueText({ ...issue, loc: issue.loc.slice(2) }) : issue.msg;
    if (existing) {
      existing.append(h('br'), msg);
    }
    else {
      const p = h('p', { class: 'field-error', id: errId }, msg);
      input.insertAdjacentElement('afterend', p);
      input.setAttribute('aria-invalid', 'true');
      const described = input.getAttribute('aria-describedby');
      input.setAttribute('aria-describedby', described ? `${described} ${errId}` : errId);
    }
    first = first ?? input;
  }
  replace(box, errorBox(e, rest));
  first?.focus();
}

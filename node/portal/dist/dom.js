export function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [name, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false)
        continue;
      if (typeof value === 'function') {
        el.addEventListener(name.replace(/^on/, ''), value);
      }
      else if (value === true) {
        el.setAttribute(name, '');
      }
      else {
        el.setAttribute(name, String(value));
      }
    }
  }
  append(el, ...children);
  return el;
}
export function append(el, ...children) {
  for (const c of children) {
    if (Array.isArray(c)) {
      append(el, ...c);
    }
    else if (c === null || c === undefined || c === false) {
      continue;
    }
    else if (typeof c === 'string' || typeof c === 'number') {
      el.appendChild(document.createTextNode(String(c)));
    }
    else {
      el.appendChild(c);
    }
  }
}
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, ...children);
}
let uid = 0;
export function nextId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}
function describedBy(opts, id) {
  if (!opts.hint)
    return { hint: null, attr: null };
  const hintId = `${id}-hint`;
  return { hint: h('p', { class: 'hint', id: hintId }, opts.hint), attr: hintId };
}
export function inputField(opts) {
  const id = opts.id ?? nextId(opts.name);
  const { hint, attr } = describedBy(opts, id);
  const input = h('input', {
    id,
    name: opts.name,
    type: opts.type ?? 'text',
    value: opts.value === undefined ? null : String(opts.value),
    required: opts.required ?? false,
    autocomplete: opts.autocomplete ?? null,
    placeholder: opts.placeholder ?? null,
    min: opts.min ?? null,
    max: opts.max ?? null,
    minlength: opts.minlength ?? null,
    maxlength: opts.maxlength ?? null,
    inputmode: opts.inputmode ?? null,
    pattern: opts.pattern ?? null,
    spellcheck: opts.spellcheck === false ? 'false' : null,
    'aria-describedby': attr,
  });
  const wrap = h('div', { class: 'field' }, h('label', { for: id }, opts.label), hint, input);
  return { wrap, input };
}
export function textareaField(opts) {
  const id = opts.id ?? nextId(opts.name);
  const { hint, attr } = describedBy(opts, id);
  const input = h('textarea', {
    id,
    name: opts.name,
    rows: opts.rows ?? 3,
    required: opts.required ?? false,
    placeholder: opts.placeholder ?? null,
    maxlength: opts.maxlength ?? null,
    spellcheck: opts.spellcheck === false ? 'false' : null,
    autocomplete: 'off',
    'aria-describedby': attr,
  });
  if (opts.value !== undefined)
    input.value = String(opts.value);
  const wrap = h('div', { class: 'field' }, h('label', { for: id }, opts.label), hint, input);
  return { wrap, input };
}
export function checkboxField(opts) {
  const id = opts.id ?? nextId(opts.name);
  const input = h('input', {
    id,
    name: opts.name,
    type: 'checkbox',
    value: opts.value ?? null,
    'aria-describedby': opts.hint ? `${id}-hint` : null,
  });
  input.checked = opts.checked ?? false;
  const wrap = h('div', { class: 'check' }, input, h('label', { for: id }, opts.label), opts.hint ? h('span', { class: 'hint', id: `${id}-hint` }, opts.hint) : null);
  return { wrap, input };
}
export function selectField(opts) {
  const id = opts.id ?? nextId(opts.name);
  const input = h('select', { id, name: opts.name, required: opts.required ?? false }, opts.options.map(([v, t]) => h('option', { value: v }, t)));
  if (opts.value !== undefined)
    input.value = opts.value;
  const wrap = h('div', { class: 'field' }, h('label', { for: id }, opts.label), input);
  return { wrap, input };
}
export function button(label, onclick, attrs = {}) {
  return h('button', { type: 'button', ...attrs, onclick: onclick ?? undefined }, label);
}
export function table(caption, columns, rows, opts = {}) {
  if (rows.length === 0) {
    return h('p', { class: 'empty', 'data-testid': opts.testid ?? null }, opts.empty ?? 'Nothing here yet.');
  }
  const t = h('table', { 'data-testid': opts.testid ?? null }, caption ? h('caption', null, caption) : null, h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col' }, c)))), h('tbody', null, rows.map((cells) => h('tr', null, cells.map((c, i) => (i === 0 && opts.rowHeader ? h('th', { scope: 'row' }, c) : h('td', null, c)))))));
  return h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': caption ?? columns.join(', ') }, t);
}
export function time(iso) {
  if (!iso)
    return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime()))
    return iso;
  const p = (n) => String(n).padStart(2, '0');
  const local = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  return h('time', { datetime: iso, title: `${d.toLocaleString()} (${iso})` }, local);
}
export function code(text) {
  return h('code', null, text);
}
export function list(items) {
  return items.length ? items.join(', ') : '—';
}
export function badge(text, kind = 'info') {
  return h('span', { class: `badge badge-${kind}` }, text);
}
export function details(pairs, testid) {
  return h('dl', { class: 'details', 'data-testid': testid ?? null }, pairs.map(([k, v]) => [h('dt', null, k), h('dd', null, v)]));
}
export function say(box, text) {
  replace(box, text ? h('p', { class: 'notice' }, text) : null);
}
export function lines(text) {
  return text
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}
export function section(title, level, ...children) {
  const heading = level === 2 ? h('h2', null, title) : h('h3', null, title);
  return h('section', { class: 'card' }, heading, ...children);
}

// Tiny element-building helpers. Text always goes in through textContent (text nodes), never
// through innerHTML, so API data cannot inject markup.

export type Child = Node | string | number | null | undefined | false;
export type Children = Child | Children[];
type Handler = (ev: Event) => void;
export type Attrs = {
  [name: string]: string | number | boolean | null | undefined | Handler;
};

/** `h('p', {class: 'x'}, 'text', child)`: attributes, `on<event>` listeners, children. */
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attrs?: Attrs | null,
  ...children: Children[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [name, value] of Object.entries(attrs)) {
      if (value === null || value === undefined || value === false) continue;
      if (typeof value === 'function') {
        el.addEventListener(name.replace(/^on/, ''), value);
      } else if (value === true) {
        el.setAttribute(name, '');
      } else {
        el.setAttribute(name, String(value));
      }
    }
  }
  append(el, ...children);
  return el;
}

export function append(el: Node, ...children: Children[]): void {
  for (const c of children) {
    if (Array.isArray(c)) {
      append(el, ...c);
    } else if (c === null || c === undefined || c === false) {
      continue;
    } else if (typeof c === 'string' || typeof c === 'number') {
      el.appendChild(document.createTextNode(String(c)));
    } else {
      el.appendChild(c);
    }
  }
}

/** Replaces every child of `el`. */
export function replace(el: Element, ...children: Children[]): void {
  el.replaceChildren();
  append(el, ...children);
}

let uid = 0;
/** A document-unique id with a readable prefix. */
export function nextId(prefix: string): string {
  uid += 1;
  return `${prefix}-${uid}`;
}

export interface FieldOptions {
  label: string;
  name: string;
  id?: string;
  type?: string;
  value?: string | number;
  required?: boolean;
  hint?: string;
  autocomplete?: string;
  placeholder?: string;
  min?: number;
  max?: number;
  minlength?: number;
  maxlength?: number;
  rows?: number;
  inputmode?: string;
  pattern?: string;
  spellcheck?: boolean;
}

export interface Field<E extends HTMLElement> {
  wrap: HTMLDivElement;
  input: E;
}

function describedBy(opts: FieldOptions, id: string): { hint: HTMLElement | null; attr: string | null } {
  if (!opts.hint) return { hint: null, attr: null };
  const hintId = `${id}-hint`;
  return { hint: h('p', { class: 'hint', id: hintId }, opts.hint), attr: hintId };
}

/** A labelled `<input>`; the label's `for` points at it. */
export function inputField(opts: FieldOptions): Field<HTMLInputElement> {
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

/** A labelled `<textarea>`. */
export function textareaField(opts: FieldOptions): Field<HTMLTextAreaElement> {
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
  if (opts.value !== undefined) input.value = String(opts.value);
  const wrap = h('div', { class: 'field' }, h('label', { for: id }, opts.label), hint, input);
  return { wrap, input };
}

/** A labelled checkbox (label after the box). */
export function checkboxField(opts: {
  label: string;
  name: string;
  id?: string;
  value?: string;
  checked?: boolean;
  hint?: string;
}): Field<HTMLInputElement> {
  const id = opts.id ?? nextId(opts.name);
  const input = h('input', {
    id,
    name: opts.name,
    type: 'checkbox',
    value: opts.value ?? null,
    'aria-describedby': opts.hint ? `${id}-hint` : null,
  });
  input.checked = opts.checked ?? false;
  const wrap = h(
    'div',
    { class: 'check' },
    input,
    h('label', { for: id }, opts.label),
    opts.hint ? h('span', { class: 'hint', id: `${id}-hint` }, opts.hint) : null,
  );
  return { wrap, input };
}

/** A labelled `<select>` of `[value, text]` options. */
export function selectField(opts: {
  label: string;
  name: string;
  id?: string;
  options: [string, string][];
  value?: string;
  required?: boolean;
}): Field<HTMLSelectElement> {
  const id = opts.id ?? nextId(opts.name);
  const input = h(
    'select',
    { id, name: opts.name, required: opts.required ?? false },
    opts.options.map(([v, t]) => h('option', { value: v }, t)),
  );
  if (opts.value !== undefined) input.value = opts.value;
  const wrap = h('div', { class: 'field' }, h('label', { for: id }, opts.label), input);
  return { wrap, input };
}

/** A `<button>`; `type` defaults to "button" so it never submits a form by accident. */
export function button(
  label: string,
  onclick: ((ev: Event) => void) | null,
  attrs: Attrs = {},
): HTMLButtonElement {
  return h('button', { type: 'button', ...attrs, onclick: onclick ?? undefined }, label);
}

/**
 * A horizontally scrollable table with `<th scope="col">` headers. The first cell of a row
 * becomes a row header when `rowHeader` is set.
 */
export function table(
  caption: string | null,
  columns: string[],
  rows: Children[][],
  opts: { rowHeader?: boolean; testid?: string; empty?: string } = {},
): HTMLElement {
  if (rows.length === 0) {
    return h('p', { class: 'empty', 'data-testid': opts.testid ?? null }, opts.empty ?? 'Nothing here yet.');
  }
  const t = h(
    'table',
    { 'data-testid': opts.testid ?? null },
    caption ? h('caption', null, caption) : null,
    h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col' }, c)))),
    h(
      'tbody',
      null,
      rows.map((cells) =>
        h(
          'tr',
          null,
          cells.map((c, i) => (i === 0 && opts.rowHeader ? h('th', { scope: 'row' }, c) : h('td', null, c))),
        ),
      ),
    ),
  );
  // Focusable so keyboard users can scroll a wide table.
  return h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': caption ?? columns.join(', ') }, t);
}

/** A `<time>` showing an API time as local `YYYY-MM-DD HH:MM`; the exact value in `title`. */
export function time(iso: string | null | undefined): Node | string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const p = (n: number): string => String(n).padStart(2, '0');
  const local = `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}`;
  return h('time', { datetime: iso, title: `${d.toLocaleString()} (${iso})` }, local);
}

/** `<code>` for identifiers. */
export function code(text: string): HTMLElement {
  return h('code', null, text);
}

/** A comma list, or a dash when empty. */
export function list(items: string[]): string {
  return items.length ? items.join(', ') : '—';
}

/** A small pill, e.g. "Revoked". */
export function badge(text: string, kind: 'ok' | 'warn' | 'off' | 'info' = 'info'): HTMLElement {
  return h('span', { class: `badge badge-${kind}` }, text);
}

/** A description list from `[term, value]` pairs. */
export function details(pairs: [string, Children][], testid?: string): HTMLElement {
  return h(
    'dl',
    { class: 'details', 'data-testid': testid ?? null },
    pairs.map(([k, v]) => [h('dt', null, k), h('dd', null, v)]),
  );
}

/** A role=status line that screen readers announce; replaces the previous one in `box`. */
export function say(box: HTMLElement, text: string): void {
  replace(box, text ? h('p', { class: 'notice' }, text) : null);
}

/** Lines of a textarea, trimmed, empty ones dropped. */
export function lines(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/** Section with an h2 (or another level) heading. */
export function section(title: string, level: 2 | 3, ...children: Children[]): HTMLElement {
  const heading = level === 2 ? h('h2', null, title) : h('h3', null, title);
  return h('section', { class: 'card' }, heading, ...children);
}

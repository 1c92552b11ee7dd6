// The audit log of admin actions: who, what, when, from where; newest first, paged.

import { get } from './api.js';
import { Children, button, code, h, replace, section, time } from './dom.js';
import { run } from './forms.js';
import { fill, pageTitle } from './page.js';
import { href } from './router.js';
import { AuditEntry, AuditPage } from './types.js';

const PAGE = 50;

function actor(e: AuditEntry): Children {
  const kind = e.actor.kind === 'admin_user' ? 'Admin user' : e.actor.kind === 'admin_token' ? 'Admin token' : e.actor.kind === 'bootstrap' ? 'Bootstrap token' : e.actor.kind;
  return [e.actor.name ?? '—', h('br'), h('span', { class: 'muted' }, kind)];
}

function row(e: AuditEntry): HTMLTableRowElement {
  return h(
    'tr',
    { 'data-action': e.action },
    h('td', null, time(e.at)),
    h('td', null, actor(e)),
    h('th', { scope: 'row' }, code(e.action)),
    h('td', null, e.project ? h('a', { href: href('projects', e.project) }, e.project) : '—'),
    h('td', null, e.target ?? '—'),
    h('td', null, e.ip ?? '—'),
    h('td', null, e.request_id ? code(e.request_id) : '—'),
  );
}

export function renderAudit(view: HTMLElement): void {
  const slot = h('div');
  const errors = h('div');

  const load = async (): Promise<Children> => {
    const first = await get<AuditPage>(`/admin/v1/audit-log?limit=${PAGE}`);
    if (first.entries.length === 0) return h('p', { class: 'empty', 'data-testid': 'audit-table' }, 'No admin actions recorded yet.');
    const body = h('tbody', null, first.entries.map(row));
    const tableEl = h(
      'table',
      { 'data-testid': 'audit-table' },
      h('thead', null, h('tr', null, ['When', 'Who', 'Action', 'Project', 'Target', 'IP', 'Request ID'].map((c) => h('th', { scope: 'col' }, c)))),
      body,
    );
    const more = h('div', { class: 'actions' });
    let cursor = first.next_cursor;
    const drawMore = (): void => {
      replace(
        more,
        cursor
          ? button(
              'Load more',
              (ev) =>
                void (async () => {
                  const c = cursor;
                  if (!c) return;
                  const page = await run(ev.currentTarget as HTMLButtonElement, errors, () =>
                    get<AuditPage>(`/admin/v1/audit-log?limit=${PAGE}&cursor=${encodeURIComponent(c)}`),
                  );
                  if (!page) return;
                  body.append(...page.value.entries.map(row));
                  cursor = page.value.next_cursor;
                  drawMore();
                })(),
              { id: 'audit-more', 'data-testid': 'audit-more' },
            )
          : h('p', { class: 'muted' }, 'That is everything.'),
      );
    };
    drawMore();
    return [h('div', { class: 'table-wrap', tabindex: 0, role: 'region', 'aria-label': 'Audit log entries' }, tableEl), errors, more];
  };

  replace(
    view,
    pageTitle('Audit log'),
    section('Admin actions', 2, h('p', { class: 'hint' }, 'Newest first. Secrets are never recorded.'), slot, h('div', { class: 'actions' }, button('Refresh', () => void fill(slot, load), { id: 'audit-refresh' }))),
  );
  void fill(slot, load);
}

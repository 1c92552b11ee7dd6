// One project's page: its heading, the section tabs, and the chosen section.

import { get, seg } from './api.js';
import { renderClients, renderKeys } from './credentials.js';
import { code, h } from './dom.js';
import { renderEndUsers } from './endusers.js';
import { renderProjectMaintenance } from './maintenance.js';
import { fill, pageTitle } from './page.js';
import { href } from './router.js';
import { renderSettings } from './settings.js';
import { renderSql } from './sql.js';
import { Project } from './types.js';

type Tab = (project: Project, rest: string[]) => HTMLElement;

const TABS: [string, string, Tab][] = [
  ['settings', 'Settings', renderSettings],
  ['clients', 'Public clients', renderClients],
  ['keys', 'Secret keys', renderKeys],
  ['sql', 'SQL', renderSql],
  ['end-users', 'End users', renderEndUsers],
  ['maintenance', 'Maintenance', renderProjectMaintenance],
];

export function renderProject(view: HTMLElement, slug: string, tab: string, rest: string[]): void {
  const chosen = TABS.find(([path]) => path === tab);
  const head = pageTitle(slug);
  const heading = head.querySelector('h1');
  const sub = h('p', { class: 'muted' });
  head.append(sub);
  const nav = h(
    'nav',
    { class: 'tabs', 'aria-label': 'Project sections' },
    h(
      'ul',
      null,
      TABS.map(([path, label]) =>
        h('li', null, h('a', { href: href('projects', slug, path), id: `tab-${path}`, 'data-testid': `tab-${path}`, 'aria-current': path === tab ? 'page' : null }, label)),
      ),
    ),
  );
  const content = h('div', { class: 'tab-content' });
  view.replaceChildren(
    h('p', { class: 'crumbs' }, h('a', { href: href('projects') }, 'Projects'), ' / ', slug),
    head,
    nav,
    content,
  );
  if (!chosen) {
    content.append(h('p', null, 'No such section. Choose one above.'));
    return;
  }
  void fill(content, async () => {
    const p = await get<Project>(`/admin/v1/projects/${seg(slug)}`);
    if (heading) heading.textContent = p.name;
    document.title = `${p.name} — ${chosen[1]} — CommonRock portal`;
    sub.replaceChildren('Project ', code(p.slug), ' in organization ', code(p.org_slug), p.maintenance ? ' — in maintenance' : '');
    return chosen[2](p, rest);
  });
}

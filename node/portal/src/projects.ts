// Projects by organization; creating an organization and a project.

import { get, post } from './api.js';
import { badge, code, h, inputField, replace, section, selectField, table, time } from './dom.js';
import { form } from './forms.js';
import { fill, pageTitle } from './page.js';
import { go, href } from './router.js';
import { Org, Project } from './types.js';

const SLUG_HINT = 'Lowercase letters, digits, "_" and "-"; 3 to 64 characters, starting with a letter or digit.';
const SLUG_PATTERN = '[a-z0-9][a-z0-9_\\-]{2,63}';

function projectTable(projects: Project[]): HTMLElement {
  return table(
    null,
    ['Project', 'Name', 'Maintenance', 'Created'],
    projects.map((p) => [
      h('a', { href: href('projects', p.slug), 'data-testid': `project-link-${p.slug}` }, p.slug),
      p.name,
      p.maintenance ? badge('On', 'warn') : 'Off',
      time(p.created_at),
    ]),
    { rowHeader: true, empty: 'No projects in this organization yet.' },
  );
}

function listing(orgs: Org[], projects: Project[]): HTMLElement {
  if (orgs.length === 0) {
    return h('p', { class: 'empty' }, 'No organizations yet: create one below, then a project in it.');
  }
  return h(
    'div',
    { 'data-testid': 'project-list' },
    orgs.map((o) =>
      h(
        'section',
        { class: 'card org', 'data-testid': `org-${o.slug}` },
        h('h2', null, o.name, ' ', h('span', { class: 'muted' }, '(', code(o.slug), ')')),
        projectTable(projects.filter((p) => p.org_slug === o.slug)),
      ),
    ),
  );
}

export function renderProjects(view: HTMLElement): void {
  const listSlot = h('div');
  const orgSelectSlot = h('div');
  let orgs: Org[] = [];
  let orgSelect: HTMLSelectElement | null = null;

  const load = async (): Promise<HTMLElement> => {
    const [o, p] = await Promise.all([
      get<{ orgs: Org[] }>('/admin/v1/orgs'),
      get<{ projects: Project[] }>('/admin/v1/projects'),
    ]);
    orgs = o.orgs;
    drawOrgSelect();
    return listing(o.orgs, p.projects);
  };

  // Create organization.
  const orgSlug = inputField({ label: 'Slug', name: 'slug', id: 'org-slug', required: true, hint: SLUG_HINT, pattern: SLUG_PATTERN, maxlength: 64, spellcheck: false });
  const orgName = inputField({ label: 'Name', name: 'name', id: 'org-name', required: true, maxlength: 200 });
  const orgForm = form({
    id: 'org-form',
    label: 'Create an organization',
    submit: 'Create organization',
    submitId: 'org-create',
    fields: [orgSlug.wrap, orgName.wrap],
    onSubmit: async () => {
      const o = await post<Org>('/admin/v1/orgs', { slug: orgSlug.input.value.trim(), name: orgName.input.value.trim() });
      orgSlug.input.value = '';
      orgName.input.value = '';
      await fill(listSlot, load);
      if (orgSelect) orgSelect.value = o.slug;
      return `Organization ${o.slug} created.`;
    },
  });

  // Create project.
  const projSlug = inputField({ label: 'Slug', name: 'slug', id: 'project-slug', required: true, hint: SLUG_HINT, pattern: SLUG_PATTERN, maxlength: 64, spellcheck: false });
  const projName = inputField({ label: 'Name', name: 'name', id: 'project-name', required: true, maxlength: 200 });
  const drawOrgSelect = (): void => {
    const previous = orgSelect?.value;
    const sel = selectField({
      label: 'Organization',
      name: 'org_slug',
      id: 'project-org',
      required: true,
      options: orgs.map((o) => [o.slug, `${o.name} (${o.slug})`]),
      value: previous && orgs.some((o) => o.slug === previous) ? previous : undefined,
    });
    orgSelect = orgs.length ? sel.input : null;
    replace(orgSelectSlot, orgs.length ? sel.wrap : h('p', { class: 'hint' }, 'Create an organization first.'));
  };
  const projForm = form({
    id: 'project-form',
    label: 'Create a project',
    submit: 'Create project',
    submitId: 'project-create',
    fields: [orgSelectSlot, projSlug.wrap, projName.wrap, h('p', { class: 'hint' }, 'Settings start at their defaults; change them on the project page.')],
    onSubmit: async () => {
      const p = await post<Project>('/admin/v1/projects', {
        org_slug: orgSelect?.value ?? '',
        slug: projSlug.input.value.trim(),
        name: projName.input.value.trim(),
      });
      go('projects', p.slug);
    },
  });

  replace(
    view,
    pageTitle('Projects'),
    listSlot,
    h(
      'div',
      { class: 'two-col' },
      section('Create an organization', 2, orgForm.form),
      section('Create a project', 2, projForm.form),
    ),
  );
  drawOrgSelect();
  void fill(listSlot, load);
}

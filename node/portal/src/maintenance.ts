// Maintenance switches: one project's, and the node-wide one (every project).

import { get, put, seg } from './api.js';
import { badge, button, h, replace, section } from './dom.js';
import { confirmAction } from './dialog.js';
import { run } from './forms.js';
import { fill, pageTitle } from './page.js';
import { Project } from './types.js';

function maintenanceSwitch(path: string, scope: string): HTMLElement {
  const slot = h('div');
  const errors = h('div');
  const announce = h('div', { role: 'status', class: 'form-status' });

  const draw = (enabled: boolean): HTMLElement => {
    const toggle = button(
      enabled ? 'Turn maintenance off' : 'Turn maintenance on',
      () =>
        void (async () => {
          if (!enabled) {
            const ok = await confirmAction({
              title: 'Turn maintenance on?',
              message: `Every tenant endpoint of ${scope} will answer 503 maintenance_mode (introspection included) until you turn it off. The admin API stays up.`,
              confirm: 'Turn maintenance on',
              danger: true,
            });
            if (!ok.ok) return;
          }
          const done = await run(toggle, errors, () => put<{ enabled: boolean }>(path, { enabled: !enabled }));
          if (done) {
            replace(slot, draw(done.value.enabled));
            replace(announce, h('p', { class: 'notice' }, `Maintenance is now ${done.value.enabled ? 'on' : 'off'} for ${scope}.`));
          }
        })(),
      { id: 'maintenance-toggle', 'data-testid': 'maintenance-toggle', class: enabled ? 'primary' : 'danger', 'aria-describedby': 'maintenance-state' },
    );
    return h(
      'div',
      { class: 'switch-row' },
      h(
        'p',
        { id: 'maintenance-state', 'data-testid': 'maintenance-state' },
        'Maintenance is ',
        enabled ? badge('On', 'warn') : badge('Off', 'ok'),
        enabled ? ` — tenant endpoints of ${scope} answer 503 maintenance_mode.` : ` — ${scope} answers normally.`,
      ),
      toggle,
    );
  };

  void fill(slot, async () => draw((await get<{ enabled: boolean }>(path)).enabled));
  return h('div', null, errors, slot, announce);
}

export function renderProjectMaintenance(project: Project): HTMLElement {
  return section(
    'Maintenance',
    2,
    h('p', { class: 'hint' }, 'Stored: the switch holds across restarts and on every node.'),
    maintenanceSwitch(`/admin/v1/projects/${seg(project.slug)}/maintenance`, `project ${project.slug}`),
  );
}

export function renderNodeMaintenance(view: HTMLElement): void {
  replace(
    view,
    pageTitle('Maintenance'),
    section(
      'Every project',
      2,
      h('p', { class: 'hint' }, 'The node-wide switch puts every project in maintenance at once; each project also has its own switch on its page. Stored: it holds across restarts and on every node.'),
      maintenanceSwitch('/admin/v1/maintenance', 'every project'),
    ),
  );
}

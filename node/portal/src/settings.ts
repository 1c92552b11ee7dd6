// A project's settings: token lifetimes, session cap and rate limits (PATCH sends only what
// changed; the server merges it into the current settings).

import { patch, seg } from './api.js';
import { h, inputField, section } from './dom.js';
import { form } from './forms.js';
import { Project, ProjectSettings, RateLimitName } from './types.js';

type Scalar = Exclude<keyof ProjectSettings, 'rate_limits'>;

const SCALARS: [Scalar, string, string, number][] = [
  ['access_ttl_s', 'Access token lifetime (seconds)', 'Default 3600 (1 hour).', 1],
  ['refresh_ttl_s', 'Refresh token lifetime (seconds)', 'At least the access token lifetime. Default 2592000 (30 days).', 0],
  ['refresh_reuse_grace_s', 'Refresh reuse grace (seconds)', 'The previous refresh token still returns the same successor this long; 0 makes refresh tokens single-use. At most 300. Default 10.', 0],
  ['session_max_ttl_s', 'Absolute session lifetime (seconds)', 'At least the refresh token lifetime. Default 7776000 (90 days).', 0],
  ['max_sessions_per_user', 'Live sessions per end user', 'The oldest is revoked first. Default 100.', 1],
];

export const LIMITS: [RateLimitName, string][] = [
  ['login_per_account_ip', 'Login attempts per account and IP'],
  ['login_per_account', 'Login attempts per account'],
  ['login_per_ip', 'Login attempts per IP'],
  ['signup_per_ip', 'Signups per IP'],
  ['public_per_ip', 'Public API requests per IP'],
  ['per_client', 'Requests per public client'],
  ['per_secret_key', 'Requests per secret key'],
];

function duration(s: number): string {
  const unit = (n: number, name: string): string => {
    const v = +n.toFixed(2);
    return `${v} ${name}${v === 1 ? '' : 's'}`;
  };
  if (s >= 86400) return unit(s / 86400, 'day');
  if (s >= 3600) return unit(s / 3600, 'hour');
  if (s >= 60) return unit(s / 60, 'minute');
  return unit(s, 'second');
}

export function renderSettings(project: Project): HTMLElement {
  let current = project.settings;
  const scalars = new Map<Scalar, HTMLInputElement>();
  const limits = new Map<string, HTMLInputElement>();

  const scalarFields = SCALARS.map(([name, label, hint, min]) => {
    const f = inputField({ label, name, id: `setting-${name}`, type: 'number', min, max: 4294967295, required: true, hint, inputmode: 'numeric' });
    scalars.set(name, f.input);
    const human = h('span', { class: 'human', 'aria-hidden': 'true' });
    const show = (): void => {
      const v = Number(f.input.value);
      human.textContent = name.endsWith('_s') && Number.isFinite(v) && f.input.value !== '' ? `= ${duration(v)}` : '';
    };
    f.input.addEventListener('input', show);
    f.wrap.append(human);
    return { f, show };
  });

  const limitFields = LIMITS.map(([name, label]) => {
    const burst = inputField({ label: 'Burst', name: `${name}.burst`, id: `limit-${name}-burst`, type: 'number', min: 0, max: 4294967295, required: true, inputmode: 'numeric' });
    const perMin = inputField({ label: 'Per minute', name: `${name}.per_minute`, id: `limit-${name}-per_minute`, type: 'number', min: 0, max: 4294967295, required: true, inputmode: 'numeric' });
    limits.set(`${name}.burst`, burst.input);
    limits.set(`${name}.per_minute`, perMin.input);
    return h('fieldset', { class: 'limit' }, h('legend', null, label), h('div', { class: 'pair' }, burst.wrap, perMin.wrap));
  });

  const fillIn = (s: ProjectSettings): void => {
    for (const [name, input] of scalars) input.value = String(s[name]);
    for (const [name] of LIMITS) {
      const l = s.rate_limits[name];
      const b = limits.get(`${name}.burst`);
      const p = limits.get(`${name}.per_minute`);
      if (b && l) b.value = String(l.burst);
      if (p && l) p.value = String(l.per_minute);
    }
    scalarFields.forEach(({ show }) => show());
  };

  const parts = form({
    id: 'settings-form',
    label: 'Project settings',
    submit: 'Save settings',
    submitId: 'settings-save',
    fields: [
      h('fieldset', { class: 'group' }, h('legend', null, 'Tokens and sessions'), scalarFields.map(({ f }) => f.wrap)),
      h(
        'fieldset',
        { class: 'group' },
        h('legend', null, 'Rate limits'),
        h('p', { class: 'hint' }, 'Each limit is a token bucket: "burst" requests at once, refilled at "per minute". 0 in either turns that limit off.'),
        h('div', { class: 'limits' }, limitFields),
      ),
    ],
    onSubmit: async () => {
      const changes: Record<string, unknown> = {};
      for (const [name, input] of scalars) {
        const v = Number(input.value);
        if (v !== current[name]) changes[name] = v;
      }
      const rl: Record<string, Record<string, number>> = {};
      for (const [name] of LIMITS) {
        for (const part of ['burst', 'per_minute'] as const) {
          const v = Number(limits.get(`${name}.${part}`)?.value);
          if (v !== current.rate_limits[name]?.[part]) (rl[name] ??= {})[part] = v;
        }
      }
      if (Object.keys(rl).length) changes['rate_limits'] = rl;
      if (Object.keys(changes).length === 0) return 'Nothing changed.';
      const p = await patch<Project>(`/admin/v1/projects/${seg(project.slug)}`, { settings: changes });
      current = p.settings;
      fillIn(current);
      return 'Settings saved.';
    },
    extraButtons: h('button', { type: 'button', onclick: () => fillIn(current) }, 'Undo changes'),
  });
  fillIn(current);
  return section('Settings', 2, parts.form);
}

// Public clients and secret keys of a project: list, create (the secret shown once), revoke.

import { del, get, post, seg } from './api.js';
import { badge, button, checkboxField, code, h, inputField, lines, list, section, table, textareaField, time } from './dom.js';
import { confirmAction } from './dialog.js';
import { form, run } from './forms.js';
import { fill } from './page.js';
import { secretPanel, showPanel } from './secret.js';
import { ApiKey, ApiKeyCreated, Client, ClientCreated, Project } from './types.js';

/** Public scopes (SPEC §2; node/src/api/public/mod.rs SCOPES). */
export const SCOPES: [string, string, boolean][] = [
  ['end_users:signup', 'Sign up end users', true],
  ['end_users:login', 'Log end users in', true],
  ['end_users:refresh', 'Refresh tokens', true],
  ['end_users:logout', 'Log out', true],
  ['end_users:me', 'Read the current user and manage own sessions', true],
  ['sql:execute', 'Run public SQL query definitions', false],
];

function status(revokedAt: string | null, expiresAt?: string | null): HTMLElement {
  if (revokedAt) return badge('Revoked', 'off');
  if (expiresAt && Date.parse(expiresAt) <= Date.now()) return badge('Expired', 'off');
  return badge('Active', 'ok');
}

export function renderClients(project: Project): HTMLElement {
  const base = `/admin/v1/projects/${seg(project.slug)}/clients`;
  const listSlot = h('div');
  const panelSlot = h('div', { class: 'panel-slot' });
  const errors = h('div');

  const load = async (): Promise<HTMLElement> => {
    const { clients } = await get<{ clients: Client[] }>(base);
    return table(
      null,
      ['Name', 'Client ID', 'Key prefix', 'Allowed origins', 'Scopes', 'Created', 'Last used', 'Status', 'Actions'],
      clients.map((c) => [
        c.name,
        code(c.client_id),
        code(c.key_prefix),
        list(c.allowed_origins),
        list(c.scopes),
        time(c.created_at),
        time(c.last_used_at),
        status(c.revoked_at),
        c.revoked_at
          ? '—'
          : button(
              'Revoke',
              (ev) => {
                const btn = ev.currentTarget as HTMLButtonElement;
                void (async () => {
                  const ok = await confirmAction({
                    title: 'Revoke this public client?',
                    message: `Apps using client "${c.name}" (${c.client_id}) stop working at once. This cannot be undone.`,
                    confirm: 'Revoke client',
                    danger: true,
                  });
                  if (!ok.ok) return;
                  const done = await run(btn, errors, () => del(`${base}/${seg(c.client_id)}`));
                  if (done) void fill(listSlot, load);
                })();
              },
              { class: 'danger small', 'data-testid': `revoke-client-${c.client_id}`, 'aria-label': `Revoke client ${c.name}` },
            ),
      ]),
      { rowHeader: true, testid: 'clients-table', empty: 'No public clients yet.' },
    );
  };

  const name = inputField({ label: 'Name', name: 'name', id: 'client-name', required: true, maxlength: 200, hint: 'For you, e.g. "web" or "ios".' });
  const origins = textareaField({
    label: 'Allowed origins',
    name: 'allowed_origins',
    id: 'client-origins',
    rows: 3,
    spellcheck: false,
    hint: 'One per line, scheme://host[:port], e.g. https://app.example.com or app://com.example.ios. Requests from any other Origin are refused.',
  });
  const scopeBoxes = SCOPES.map(([scope, label, on]) =>
    checkboxField({ label: scope, name: 'scopes', id: `scope-${scope.replace(':', '-')}`, value: scope, checked: on, hint: label }),
  );
  const parts = form({
    id: 'client-form',
    label: 'Create a public client',
    submit: 'Create client',
    submitId: 'client-create',
    fields: [
      name.wrap,
      origins.wrap,
      h('fieldset', { class: 'group scopes' }, h('legend', null, 'Scopes'), scopeBoxes.map((b) => b.wrap)),
    ],
    onSubmit: async () => {
      const created = await post<ClientCreated>(base, {
        name: name.input.value.trim(),
        allowed_origins: lines(origins.input.value),
        scopes: scopeBoxes.filter((b) => b.input.checked).map((b) => b.input.value),
      });
      name.input.value = '';
      showPanel(
        panelSlot,
        secretPanel(`Client "${created.name}" created`, [
          { label: 'Client ID (X-Client-Id)', name: 'client_id', value: created.client_id, secret: false },
          { label: 'Client key (X-Client-Key)', name: 'client_key', value: created.client_key },
        ], h('p', { class: 'hint' }, 'Allowed origins: ', list(created.allowed_origins), '. Scopes: ', list(created.scopes), '.')),
      );
      void fill(listSlot, load);
    },
  });

  void fill(listSlot, load);
  return h(
    'div',
    null,
    panelSlot,
    section('Public clients', 2, h('p', { class: 'hint' }, 'Browsers and apps call the public API with a client ID and key plus their Origin. The key is not a secret from users, the allowed origins are what protect it.'), errors, listSlot),
    section('Create a public client', 2, parts.form),
  );
}

export function renderKeys(project: Project): HTMLElement {
  const base = `/admin/v1/projects/${seg(project.slug)}/api-keys`;
  const listSlot = h('div');
  const panelSlot = h('div', { class: 'panel-slot' });
  const errors = h('div');

  const load = async (): Promise<HTMLElement> => {
    const { api_keys } = await get<{ api_keys: ApiKey[] }>(base);
    return table(
      null,
      ['Name', 'Key prefix', 'Allowed networks', 'Allowed origins', 'Created', 'Expires', 'Last used', 'Status', 'Actions'],
      api_keys.map((k) => [
        k.name,
        code(k.key_prefix),
        list(k.allowed_cidrs),
        list(k.allowed_origins),
        time(k.created_at),
        time(k.expires_at),
        time(k.last_used_at),
        [
          status(k.revoked_at, k.expires_at),
          !k.revoked_at && k.allowed_cidrs.length === 0 && k.allowed_origins.length === 0 ? [' ', badge('No restriction: refused', 'warn')] : null,
        ],
        k.revoked_at
          ? '—'
          : button(
              'Revoke',
              (ev) => {
                const btn = ev.currentTarget as HTMLButtonElement;
                void (async () => {
                  const ok = await confirmAction({
                    title: 'Revoke this secret key?',
                    message: `Backends using key "${k.name}" (${k.key_prefix}…) stop working at once. This cannot be undone.`,
                    confirm: 'Revoke key',
                    danger: true,
                  });
                  if (!ok.ok) return;
                  const done = await run(btn, errors, () => del(`${base}/${seg(k.id)}`));
                  if (done) void fill(listSlot, load);
                })();
              },
              { class: 'danger small', 'data-testid': `revoke-key-${k.id}`, 'aria-label': `Revoke key ${k.name}` },
            ),
      ]),
      { rowHeader: true, testid: 'keys-table', empty: 'No secret keys yet.' },
    );
  };

  const name = inputField({ label: 'Name', name: 'name', id: 'key-name', required: true, maxlength: 200, hint: 'For you, e.g. "backend".' });
  const cidrs = textareaField({
    label: 'Allowed networks (CIDR)',
    name: 'allowed_cidrs',
    id: 'key-cidrs',
    rows: 3,
    spellcheck: false,
    hint: 'One per line, IPv4 or IPv6, e.g. 10.0.0.0/8 or 203.0.113.7. Calls from other addresses are refused.',
  });
  const origins = textareaField({
    label: 'Allowed origins',
    name: 'allowed_origins',
    id: 'key-origins',
    rows: 2,
    spellcheck: false,
    hint: 'One per line. When set, every call must send one of these as Origin.',
  });
  const expires = inputField({
    label: 'Expires at (optional)',
    name: 'expires_at',
    id: 'key-expires',
    type: 'datetime-local',
    hint: 'Your local time; the key stops working then.',
  });
  const parts = form({
    id: 'key-form',
    label: 'Create a secret key',
    submit: 'Create secret key',
    submitId: 'key-create',
    fields: [
      name.wrap,
      h('p', { class: 'warning-text' }, 'A key needs at least one allowed network or origin: a key with neither is refused (restrictions_required) on every call.'),
      cidrs.wrap,
      origins.wrap,
      expires.wrap,
    ],
    onSubmit: async () => {
      const body: Record<string, unknown> = {
        name: name.input.value.trim(),
        allowed_cidrs: lines(cidrs.input.value),
        allowed_origins: lines(origins.input.value),
      };
      if (expires.input.value) {
        const at = new Date(expires.input.value);
        if (!Number.isNaN(at.getTime())) body['expires_at'] = at.toISOString().replace(/\.\d{3}Z$/, 'Z');
      }
      const created = await post<ApiKeyCreated>(base, body);
      name.input.value = '';
      const unrestricted = created.allowed_cidrs.length === 0 && created.allowed_origins.length === 0;
      showPanel(
        panelSlot,
        secretPanel(
          `Secret key "${created.name}" created`,
          [{ label: 'Secret key (X-API-Key)', name: 'key', value: created.key }],
          [
            h('p', { class: 'hint' }, 'Allowed networks: ', list(created.allowed_cidrs), '. Allowed origins: ', list(created.allowed_origins), '.'),
            unrestricted
              ? h('p', { class: 'warning-text', role: 'alert' }, 'This key has no allowed network or origin, so every call with it is refused (restrictions_required). Revoke it and create one with a restriction.')
              : null,
          ],
        ),
      );
      void fill(listSlot, load);
    },
  });

  void fill(listSlot, load);
  return h(
    'div',
    null,
    panelSlot,
    section('Secret keys', 2, h('p', { class: 'hint' }, 'Your backend calls introspection and SQL with a secret key. Never put one in an app. Two live keys let you rotate.'), errors, listSlot),
    section('Create a secret key', 2, parts.form),
  );
}

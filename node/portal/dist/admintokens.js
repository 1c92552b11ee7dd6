import { del, get, post, seg } from './api.js';
import { badge, button, code, h, inputField, replace, section, table, time } from './dom.js';
import { confirmAction } from './dialog.js';
import { form, run } from './forms.js';
import { fill, pageTitle } from './page.js';
import { secretPanel, showPanel } from './secret.js';
const BASE = '/admin/v1/admin-tokens';
export function renderAdminTokens(view) {
  const slot = h('div');
  const errors = h('div');
  const panelSlot = h('div', { class: 'panel-slot' });
  const load = async () => {
    const { admin_tokens } = await get(BASE);
    return table(null, ['Name', 'Prefix', 'Created', 'Status', 'Actions'], admin_tokens.map((t) => [
      t.name,
      code(t.token_prefix),
      time(t.created_at),
      t.revoked_at ? badge('Revoked', 'off') : badge('Active', 'ok'),
      t.revoked_at
        ? '—'
        : button('Revoke', (ev) => void (async () => {
          const ok = await confirmAction({
            title: `Revoke admin token "${t.name}"?`,
            message: 'Automation using it loses admin access at once. This cannot be undone.',
            confirm: 'Revoke token',
            danger: true,
          });
          if (!ok.ok)
            return;
          const r = await run(ev.currentTarget, errors, () => del(`${BASE}/${seg(t.id)}`));
          if (r)
            void fill(slot, load);
        })(), { class: 'small danger', 'data-testid': `revoke-token-${t.id}`, 'aria-label': `Revoke token ${t.name}` }),
    ]), { rowHeader: true, testid: 'admin-tokens-table', empty: 'No admin tokens minted yet (the bootstrap token is not listed).' });
  };
  const name = inputField({ label: 'Name', name: 'name', id: 'token-name', required: true, maxlength: 200, hint: 'What uses it, e.g. "ci" or "terraform".' });
  const parts = form({
    id: 'token-form',
    label: 'Mint an admin token',
    submit: 'Mint token',
    submitId: 'token-create',
    fields: [name.wrap],
    onSubmit: async () => {
      const t = await post(BASE, { name: name.input.value.trim() });
      name.input.value = '';
      showPanel(panelSlot, secretPanel(`Admin token "${t.name}" minted`, [{ label: 'Admin token (Authorization: Bearer …)', name: 'token', value: t.token }], h('p', { class: 'hint' }, 'It grants full admin access: keep it in a secret store.')));
      void fill(slot, load);
    },
  });
  replace(view, pageTitle('Admin tokens'), panelSlot, section('Tokens', 2, h('p', { class: 'hint' }, 'Bearer tokens for scripts and CI calling the admin API. They need no CSRF header and no TOTP, so treat them like passwords.'), errors, slot), section('Mint an admin token', 2, parts.form));
  void fill(slot, load);
}

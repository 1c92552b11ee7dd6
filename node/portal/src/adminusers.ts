// Admin users: list, create, disable/enable, reset a lost TOTP, delete.

import { del, get, patch, post, seg } from './api.js';
import { badge, button, h, inputField, replace, section, table, time } from './dom.js';
import { confirmAction } from './dialog.js';
import { form, run } from './forms.js';
import { fill, pageTitle } from './page.js';
import { currentUser, updateUser } from './session.js';
import { AdminUser } from './types.js';

const BASE = '/admin/v1/admin-users';

export function renderAdminUsers(view: HTMLElement): void {
  const slot = h('div');
  const errors = h('div');
  const announce = h('div', { role: 'status', class: 'form-status' });
  const done = (msg: string): void => {
    replace(announce, h('p', { class: 'notice' }, msg));
    void fill(slot, load);
  };

  const actions = (u: AdminUser): HTMLElement => {
    const me = currentUser()?.id === u.id;
    const toggle = button(
      u.disabled ? 'Enable' : 'Disable',
      (ev) =>
        void (async () => {
          if (!u.disabled) {
            const ok = await confirmAction({
              title: `Disable ${u.email}?`,
              message: me
                ? 'This is you: you are logged out at once and cannot log in again until a colleague enables you.'
                : 'Their portal sessions end at once, and they cannot log in until enabled again.',
              confirm: 'Disable',
              danger: true,
            });
            if (!ok.ok) return;
          }
          const r = await run(ev.currentTarget as HTMLButtonElement, errors, () => patch<AdminUser>(`${BASE}/${seg(u.id)}`, { disabled: !u.disabled }));
          if (r) {
            updateUser(r.value);
            done(`${u.email} is now ${r.value.disabled ? 'disabled' : 'enabled'}.`);
          }
        })(),
      { class: 'small', 'data-testid': `toggle-admin-${u.email}`, 'aria-label': `${u.disabled ? 'Enable' : 'Disable'} ${u.email}` },
    );
    const reset = u.totp_enabled
      ? button(
          'Reset TOTP',
          (ev) =>
            void (async () => {
              const ok = await confirmAction({
                title: `Reset two-factor authentication of ${u.email}?`,
                message: `${me ? 'This is you: you are logged out at once. ' : 'Their portal sessions end at once. '}The authenticator and recovery codes stop working; logging in takes the password alone until two-factor authentication is set up again. Do this only for a lost device.`,
                confirm: 'Reset TOTP',
                danger: true,
              });
              if (!ok.ok) return;
              const r = await run(ev.currentTarget as HTMLButtonElement, errors, () => del<AdminUser>(`${BASE}/${seg(u.id)}/totp`));
              if (r) {
                updateUser(r.value);
                done(`Two-factor authentication of ${u.email} was reset.`);
              }
            })(),
          { class: 'small', 'data-testid': `reset-totp-${u.email}`, 'aria-label': `Reset TOTP of ${u.email}` },
        )
      : null;
    const remove = button(
      'Delete',
      (ev) =>
        void (async () => {
          const ok = await confirmAction({
            title: `Delete ${u.email}?`,
            message: me ? 'This is you: you are logged out for good.' : 'Their portal sessions end and they lose access to the portal. This cannot be undone.',
            confirm: 'Delete admin user',
            danger: true,
          });
          if (!ok.ok) return;
          const r = await run(ev.currentTarget as HTMLButtonElement, errors, () => del(`${BASE}/${seg(u.id)}`));
          if (r) done(`${u.email} was deleted.`);
        })(),
      { class: 'small danger', 'data-testid': `delete-admin-${u.email}`, 'aria-label': `Delete ${u.email}` },
    );
    return h('div', { class: 'row-actions' }, toggle, reset, remove);
  };

  const load = async (): Promise<HTMLElement> => {
    const { admin_users } = await get<{ admin_users: AdminUser[] }>(BASE);
    const me = currentUser()?.id;
    return table(
      null,
      ['Email', 'Two-factor', 'Status', 'Created', 'Actions'],
      admin_users.map((u) => [
        [u.email, u.id === me ? h('span', { class: 'muted' }, ' (you)') : null],
        u.totp_enabled ? badge('On', 'ok') : badge('Off', 'warn'),
        u.disabled ? badge('Disabled', 'off') : badge('Active', 'ok'),
        time(u.created_at),
        actions(u),
      ]),
      { rowHeader: true, testid: 'admin-users-table', empty: 'No admin users.' },
    );
  };

  const email = inputField({ label: 'Email', name: 'email', id: 'admin-email', type: 'email', required: true, autocomplete: 'off', spellcheck: false });
  const password = inputField({
    label: 'Initial password',
    name: 'password',
    id: 'admin-password',
    type: 'password',
    required: true,
    minlength: 8,
    maxlength: 1024,
    autocomplete: 'new-password',
    hint: '8 to 1024 characters. Give it to them through a safe channel; they should enrol two-factor authentication at once.',
  });
  const parts = form({
    id: 'admin-user-form',
    label: 'Add an admin user',
    submit: 'Add admin user',
    submitId: 'admin-create',
    fields: [email.wrap, password.wrap],
    onSubmit: async () => {
      const u = await post<AdminUser>(BASE, { email: email.input.value.trim(), password: password.input.value });
      email.input.value = '';
      password.input.value = '';
      void fill(slot, load);
      return `${u.email} can now log in.`;
    },
  });

  replace(
    view,
    pageTitle('Admin users'),
    section('People who can use this portal', 2, h('p', { class: 'hint' }, 'Every admin user administers every organization and project.'), errors, announce, slot),
    section('Add an admin user', 2, parts.form),
  );
  void fill(slot, load);
}

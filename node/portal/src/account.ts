// My account: who I am, this session, TOTP enrolment (QR + secret, confirm, recovery codes)
// and logging out.

import { ApiError, get, post } from './api.js';
import { badge, button, code, details, h, inputField, replace, section, time } from './dom.js';
import { errorBox, showError } from './errors.js';
import { form } from './forms.js';
import { pageTitle } from './page.js';
import { recoveryCodesPanel, secretPanel, showPanel } from './secret.js';
import { currentUser, sessionTimes, startSession, updateUser } from './session.js';
import { AdminUser, MeAnswer } from './types.js';

interface Enrolment {
  secret: string;
  otpauth_url: string;
  qr_svg: string;
}

/** Base64 of the UTF-8 bytes of `s` (btoa alone takes Latin-1 only). */
function base64Utf8(s: string): string {
  const bytes = new TextEncoder().encode(s);
  let bin = '';
  for (let i = 0; i < bytes.length; i += 0x8000) {
    bin += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(bin);
}

function accountDetails(): HTMLElement {
  const u = currentUser();
  const s = sessionTimes();
  if (!u) return h('p', null, 'Not logged in.');
  return details(
    [
      ['Email', u.email],
      ['Two-factor authentication', u.totp_enabled ? badge('On', 'ok') : badge('Off', 'warn')],
      ['Account created', time(u.created_at)],
      ['This session started', time(s?.created_at)],
      ['This session ends', time(s?.expires_at)],
      ['Ends unless used before', time(s?.idle_expires_at)],
    ],
    'account-details',
  );
}

function totpSection(onChange: () => void): HTMLElement {
  const body = h('div');
  const errors = h('div');
  const panelSlot = h('div', { class: 'panel-slot' });
  const u = currentUser();

  if (u?.totp_enabled) {
    replace(
      body,
      h('p', { 'data-testid': 'totp-state' }, badge('On', 'ok'), ' Logging in asks for a code from your authenticator app (or a recovery code).'),
      h('p', { class: 'hint' }, 'Lost your device? Use a recovery code, or ask another admin user to reset your two-factor authentication on the Admin users page.'),
    );
    return h('div', null, panelSlot, body);
  }

  const start = button(
    'Set up two-factor authentication',
    (ev) => {
      const btn = ev.currentTarget as HTMLButtonElement;
      btn.disabled = true;
      showError(errors);
      post<Enrolment>('/admin/v1/auth/totp/enroll', {})
        .then(showEnrolment)
        .catch(async (e: unknown) => {
          if (e instanceof ApiError && e.code === 'already_exists') {
            // Turned on meanwhile (another tab): show the state as it is.
            const me = await get<MeAnswer>('/admin/v1/auth/me').catch(() => null);
            if (me) {
              startSession(me);
              onChange();
              return;
            }
          }
          showError(errors, e);
        })
        .finally(() => {
          btn.disabled = false;
        });
    },
    { id: 'totp-enroll', 'data-testid': 'totp-enroll', class: 'primary' },
  );

  const showEnrolment = (e: Enrolment): void => {
    const img = h('img', {
      class: 'qr',
      alt: 'QR code for your authenticator app',
      src: `data:image/svg+xml;base64,${base64Utf8(e.qr_svg)}`,
      width: 220,
      height: 220,
      'data-testid': 'totp-qr',
    });
    const codeField = inputField({
      label: 'Code from the app',
      name: 'code',
      id: 'totp-code',
      required: true,
      inputmode: 'numeric',
      autocomplete: 'one-time-code',
      pattern: '[0-9]{6}',
      maxlength: 6,
      hint: 'The 6-digit code your app shows now.',
    });
    const confirm = form({
      id: 'totp-confirm-form',
      label: 'Confirm two-factor authentication',
      submit: 'Turn on',
      submitId: 'totp-confirm',
      fields: [codeField.wrap],
      onSubmit: async () => {
        try {
          const r = await post<{ recovery_codes: string[]; user: AdminUser }>(
            '/admin/v1/auth/totp/confirm',
            { code: codeField.input.value.trim() },
          );
          updateUser(r.user);
          replace(
            body,
            h('p', { 'data-testid': 'totp-state' }, badge('On', 'ok'), ' Two-factor authentication is on. From now on, logging in asks for a code.'),
          );
          showPanel(panelSlot, recoveryCodesPanel(r.recovery_codes));
        } catch (err) {
          if (err instanceof ApiError && err.code === 'invalid_totp') {
            codeField.input.value = '';
            codeField.input.focus();
          }
          throw err;
        }
      },
    });
    const secretEl = secretPanel('Set-up key', [{ label: 'Secret (for manual entry)', name: 'totp-secret', value: e.secret }], [
      h('details', null, h('summary', null, 'Set-up link (otpauth URL)'), h('p', null, code(e.otpauth_url))),
    ], 3);
    // The set-up key is not a one-time display like the others: the "hide" button would only
    // get in the way of entering it, so drop it.
    secretEl.querySelector('[data-testid="secret-hide"]')?.closest('.actions')?.remove();
    secretEl.querySelector('.once')?.replaceChildren(
      h('strong', null, 'Keep this private. '),
      'Anyone with this key can make codes for your account. It is not shown again once you leave this page.',
    );
    replace(
      body,
      h(
        'ol',
        { class: 'steps' },
        h('li', null, h('p', null, 'Scan this QR code with an authenticator app (or enter the key below by hand: time-based, SHA-1, 6 digits, 30 seconds).'), img, secretEl),
        h('li', null, h('p', null, 'Enter the code the app shows to turn two-factor authentication on.'), confirm.form),
      ),
    );
    codeField.input.focus();
  };

  replace(
    body,
    h('p', { 'data-testid': 'totp-state' }, badge('Off', 'warn'), ' Protect your account with a time-based code from an authenticator app.'),
    h('div', { class: 'actions' }, start),
  );
  return h('div', null, errors, panelSlot, body);
}

export function renderAccount(view: HTMLElement, logout: () => Promise<void>): void {
  const detailSlot = h('div');
  const totpSlot = h('div');
  const draw = (): void => {
    replace(detailSlot, accountDetails());
    replace(totpSlot, totpSection(draw));
  };
  replace(
    view,
    pageTitle('My account'),
    section('Account', 2, detailSlot),
    section('Two-factor authentication', 2, totpSlot),
    section(
      'Log out',
      2,
      h('p', null, 'Ends this portal session on the server.'),
      h('div', { class: 'actions' }, button('Log out', () => void logout(), { id: 'account-logout', 'data-testid': 'account-logout' })),
    ),
  );
  draw();
  // Fresh session times and TOTP state.
  get<MeAnswer>('/admin/v1/auth/me')
    .then((me) => {
      const before = currentUser()?.totp_enabled;
      startSession(me);
      if (me.user.totp_enabled !== before) draw();
      else replace(detailSlot, accountDetails());
    })
    .catch((e: unknown) => {
      if (!(e instanceof ApiError && e.status === 401)) detailSlot.append(errorBox(e));
    });
}

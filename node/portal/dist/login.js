import { ApiError, post } from './api.js';
import { h, inputField, replace } from './dom.js';
import { form } from './forms.js';
import { startSession } from './session.js';
export function renderLogin(root, notice, onLoggedIn) {
  const email = inputField({
    label: 'Email',
    name: 'email',
    id: 'login-email',
    type: 'email',
    required: true,
    autocomplete: 'username',
    spellcheck: false,
  });
  const password = inputField({
    label: 'Password',
    name: 'password',
    id: 'login-password',
    type: 'password',
    required: true,
    autocomplete: 'current-password',
  });
  const totp = inputField({
    label: 'Authentication code',
    name: 'totp_code',
    id: 'login-totp',
    autocomplete: 'one-time-code',
    inputmode: 'text',
    maxlength: 64,
    spellcheck: false,
    hint: 'The 6-digit code from your authenticator app, or one of your recovery codes.',
  });
  totp.wrap.hidden = true;
  let askTotp = false;
  const parts = form({
    id: 'login-form',
    label: 'Log in',
    submit: 'Log in',
    submitId: 'login-submit',
    fields: [email.wrap, password.wrap, totp.wrap],
    onSubmit: async (self) => {
      const body = { email: email.input.value.trim(), password: password.input.value };
      const code = totp.input.value.replace(/\s+/g, '');
      if (askTotp) {
        if (!code) {
          totp.input.focus();
          throw new ApiError(400, 'Enter the code from your authenticator app or a recovery code.', null, [], null);
        }
        body['totp_code'] = code;
      }
      try {
        const answer = await post('/admin/v1/auth/login', body, { expect401: true });
        password.input.value = '';
        totp.input.value = '';
        startSession(answer);
        onLoggedIn();
      }
      catch (e) {
        if (e instanceof ApiError && e.code === 'totp_required') {
          askTotp = true;
          totp.wrap.hidden = false;
          totp.input.required = true;
          totp.input.focus();
          document.querySelector('[data-testid="login-notice"]')?.remove();
          self.status.replaceChildren(h('p', { class: 'prompt', 'data-testid': 'totp-prompt' }, 'Two-factor authentication is on for this account: enter the code from your authenticator app, or a recovery code.'));
          return;
        }
        if (e instanceof ApiError && e.code === 'invalid_totp') {
          totp.input.value = '';
          totp.input.focus();
        }
        throw e;
      }
    },
  });
  parts.form.addEventListener('input', (ev) => {
    if (ev.target === email.input && askTotp) {
      askTotp = false;
      totp.wrap.hidden = true;
      totp.input.required = false;
      totp.input.value = '';
    }
  });
  replace(root, h('main', { class: 'login', id: 'main', tabindex: -1 }, h('p', { class: 'brand' }, 'CommonRock'), h('h1', null, 'Log in to the portal'), notice ? h('p', { class: 'notice', role: 'status', 'data-testid': 'login-notice' }, notice) : null, parts.form));
  email.input.focus();
}

// End users of a project: look one up by external ID, disable/enable, set a password, delete,
// and list/revoke their live sessions.

import { ApiError, del, get, patch, put, seg } from './api.js';
import { badge, button, code, details, h, inputField, replace, section, table, time } from './dom.js';
import { confirmAction } from './dialog.js';
import { errorBox } from './errors.js';
import { form, run } from './forms.js';
import { loading } from './page.js';
import { go } from './router.js';
import { EndUser, EndUserSession, Project } from './types.js';

export function renderEndUsers(project: Project, rest: string[]): HTMLElement {
  const slug = project.slug;
  const wanted = rest.length ? rest.join('/') : null;
  const detailSlot = h('div', { 'data-testid': 'enduser-detail' });

  const ext = inputField({
    label: 'External ID',
    name: 'external_id',
    id: 'enduser-external-id',
    required: true,
    maxlength: 128,
    value: wanted ?? undefined,
    spellcheck: false,
    hint: 'Exactly as your app registered it (case-sensitive).',
  });
  const lookup = form({
    id: 'enduser-lookup-form',
    label: 'Look up an end user',
    submit: 'Look up',
    submitId: 'enduser-lookup',
    class: 'inline-form',
    fields: [ext.wrap],
    onSubmit: async () => {
      const id = ext.input.value;
      if (id === wanted) showUser(id);
      else go('projects', slug, 'end-users', id);
    },
  });

  const showUser = (externalId: string): void => {
    const base = `/admin/v1/projects/${seg(slug)}/end-users/${seg(externalId)}`;
    const errors = h('div');
    const announce = h('div', { role: 'status', class: 'form-status' });
    const sessionsSlot = h('div');
    const infoSlot = h('div');
    const say = (msg: string): void => replace(announce, h('p', { class: 'notice' }, msg));

    const drawSessions = (sessions: EndUserSession[]): void => {
      replace(
        sessionsSlot,
        table(
          null,
          ['Session', 'Device', 'User agent', 'IP', 'Created', 'Last used', 'Access expires', 'Refresh expires', 'Actions'],
          sessions.map((s) => [
            h('code', { title: s.id, 'data-session-id': s.id }, `${s.id.slice(0, 8)}…`),
            s.device_id,
            s.user_agent ?? '—',
            s.ip ?? '—',
            time(s.created_at),
            time(s.last_used_at),
            time(s.expires_at),
            time(s.refresh_expires_at),
            button(
              'Revoke',
              (ev) =>
                void (async () => {
                  const r = await run(ev.currentTarget as HTMLButtonElement, errors, () => del(`/admin/v1/projects/${seg(slug)}/sessions/${seg(s.id)}`));
                  if (r) {
                    say(`Session ${s.id} revoked.`);
                    await reloadSessions();
                  }
                })(),
              { class: 'small danger', 'data-testid': `revoke-session-${s.id}`, 'aria-label': `Revoke session ${s.id}` },
            ),
          ]),
          { rowHeader: true, testid: 'sessions-table', empty: 'No live sessions.' },
        ),
        sessions.length
          ? h(
              'div',
              { class: 'actions' },
              button(
                'Revoke all sessions',
                (ev) =>
                  void (async () => {
                    const ok = await confirmAction({
                      title: `Revoke every session of ${externalId}?`,
                      message: 'They are logged out on every device at once.',
                      confirm: 'Revoke all',
                      danger: true,
                    });
                    if (!ok.ok) return;
                    const r = await run(ev.currentTarget as HTMLButtonElement, errors, () => del<{ revoked: number }>(`${base}/sessions`));
                    if (r) {
                      say(`${r.value.revoked} session(s) revoked.`);
                      await reloadSessions();
                    }
                  })(),
                { class: 'danger', id: 'sessions-revoke-all', 'data-testid': 'sessions-revoke-all' },
              ),
            )
          : null,
      );
    };

    const reloadSessions = async (): Promise<void> => {
      try {
        drawSessions((await get<{ sessions: EndUserSession[] }>(`${base}/sessions`)).sessions);
      } catch (e) {
        replace(sessionsSlot, errorBox(e));
      }
    };

    const drawInfo = (u: EndUser): void => {
      const toggle = button(
        u.disabled ? 'Enable' : 'Disable',
        (ev) =>
          void (async () => {
            const r = await run(ev.currentTarget as HTMLButtonElement, errors, () => patch<EndUser>(base, { disabled: !u.disabled }));
            if (r) {
              drawInfo(r.value);
              say(r.value.disabled ? `${externalId} is disabled: they cannot log in or refresh. Existing sessions stay until revoked.` : `${externalId} is enabled.`);
            }
          })(),
        { id: 'enduser-toggle', 'data-testid': 'enduser-toggle' },
      );
      const remove = button(
        'Delete end user',
        (ev) =>
          void (async () => {
            const ok = await confirmAction({
              title: `Delete ${externalId}?`,
              message: 'The end user and all their sessions are deleted. This cannot be undone.',
              confirm: 'Delete end user',
              danger: true,
            });
            if (!ok.ok) return;
            const r = await run(ev.currentTarget as HTMLButtonElement, errors, () => del(base));
            if (r) {
              replace(detailSlot, h('p', { class: 'notice', role: 'status' }, `${externalId} was deleted with their sessions.`));
            }
          })(),
        { id: 'enduser-delete', 'data-testid': 'enduser-delete', class: 'danger' },
      );
      replace(
        infoSlot,
        details(
          [
            ['External ID', code(u.external_id)],
            ['ID', code(u.id)],
            ['Status', u.disabled ? badge('Disabled', 'off') : badge('Active', 'ok')],
            ['Created', time(u.created_at)],
          ],
          'enduser-info',
        ),
        h('div', { class: 'actions' }, toggle, remove),
      );
    };

    const pw = inputField({
      label: 'New password',
      name: 'password',
      id: 'enduser-password',
      type: 'password',
      required: true,
      minlength: 8,
      maxlength: 1024,
      autocomplete: 'new-password',
      hint: '8 to 1024 characters. Every session of the user is revoked.',
    });
    const pwForm = form({
      id: 'enduser-password-form',
      label: 'Set a new password',
      submit: 'Set password',
      submitId: 'enduser-password-set',
      fields: [pw.wrap],
      onSubmit: async () => {
        await put(`${base}/password`, { password: pw.input.value });
        pw.input.value = '';
        await reloadSessions();
        return 'Password set; their sessions were revoked.';
      },
    });

    replace(detailSlot, loading());
    Promise.all([get<EndUser>(base), get<{ sessions: EndUserSession[] }>(`${base}/sessions`)])
      .then(([u, s]) => {
        drawInfo(u);
        drawSessions(s.sessions);
        replace(
          detailSlot,
          section(`End user ${externalId}`, 2, errors, announce, infoSlot),
          section('Live sessions', 2, sessionsSlot),
          section('Set a new password', 2, pwForm.form),
        );
      })
      .catch((e: unknown) => {
        if (e instanceof ApiError && e.status === 404 && e.code === 'not_found') {
          replace(detailSlot, h('p', { class: 'error', role: 'alert' }, `No end user with external ID "${externalId}" in this project.`));
        } else {
          replace(detailSlot, errorBox(e));
        }
      });
  };

  if (wanted !== null) showUser(wanted);
  return h('div', null, section('Find an end user', 2, lookup.form), detailSlot);
}

// Entry point: recovers the session (GET /auth/me), draws the shell (header, nav, main) and
// routes hash changes to the screens.

import { renderAccount } from './account.js';
import { renderAdminTokens } from './admintokens.js';
import { renderAdminUsers } from './adminusers.js';
import { ApiError, get, onUnauthorized, post } from './api.js';
import { renderAudit } from './audit.js';
import { renderCluster } from './cluster.js';
import { button, h, replace } from './dom.js';
import { errorBox, errorMessage } from './errors.js';
import { renderLogin } from './login.js';
import { renderNodeMaintenance } from './maintenance.js';
import { pageTitle } from './page.js';
import { renderProject } from './project.js';
import { renderProjects } from './projects.js';
import { currentRoute, href } from './router.js';
import { currentUser, endSession, onUserChange, startSession } from './session.js';
import { MeAnswer } from './types.js';

const NAV: [string, string][] = [
  ['projects', 'Projects'],
  ['maintenance', 'Maintenance'],
  ['cluster', 'Cluster'],
  ['audit', 'Audit log'],
  ['admin-users', 'Admin users'],
  ['admin-tokens', 'Admin tokens'],
  ['account', 'My account'],
];

interface Shell {
  main: HTMLElement;
  links: Map<string, HTMLAnchorElement>;
  who: HTMLElement;
}

let shell: Shell | null = null;

function root(): HTMLElement {
  const el = document.getElementById('app');
  if (!el) throw new Error('#app is missing from index.html');
  return el;
}

function showLogin(notice: string | null): void {
  shell = null;
  renderLogin(root(), notice, () => {
    if (currentRoute().length === 0) history.replaceState(null, '', href('projects'));
    render(true);
  });
}

export async function logout(): Promise<void> {
  let notice = 'You have logged out.';
  try {
    await post('/admin/v1/auth/logout', {}, { expect401: true });
  } catch (e) {
    if (!(e instanceof ApiError && e.status === 401)) {
      notice = `You are logged out of this page, but the server did not confirm it: ${errorMessage(e)}`;
    }
  }
  endSession();
  showLogin(notice);
}

function buildShell(): Shell {
  const links = new Map<string, HTMLAnchorElement>();
  const nav = h(
    'nav',
    { class: 'main-nav', 'aria-label': 'Main' },
    h(
      'ul',
      null,
      NAV.map(([path, label]) => {
        const a = h('a', { href: href(path), 'data-testid': `nav-${path}`, id: `nav-${path}` }, label);
        links.set(path, a);
        return h('li', null, a);
      }),
    ),
  );
  const main = h('main', { id: 'main', tabindex: -1 });
  const who = h('span', { class: 'who', 'data-testid': 'current-user' });
  const skip = button('Skip to content', () => main.focus(), { class: 'skip-link' });
  const header = h(
    'header',
    { class: 'top' },
    h(
      'div',
      { class: 'bar' },
      h('a', { class: 'brand', href: href('projects') }, 'CommonRock portal'),
      h('div', { class: 'user' }, who, button('Log out', () => void logout(), { id: 'logout', 'data-testid': 'logout' })),
    ),
    nav,
  );
  replace(root(), skip, header, main);
  return { main, links, who };
}

function showWho(): void {
  const u = currentUser();
  if (shell && u) shell.who.textContent = u.email;
}

function notFound(view: HTMLElement): void {
  replace(view, pageTitle('Page not found'), h('p', null, 'There is no such page. ', h('a', { href: href('projects') }, 'Go to projects'), '.'));
}

/** Draws the screen for the current hash. `focus` moves focus to its heading (navigation). */
function render(focus = true): void {
  if (!currentUser()) {
    showLogin(null);
    return;
  }
  if (!shell) shell = buildShell();
  showWho();
  const r = currentRoute();
  const top = r[0] ?? 'projects';
  for (const [path, a] of shell.links) {
    if (path === top) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  // A new element per view: secrets shown by the previous one are dropped with it, and a
  // late answer for the previous view lands in a detached element.
  const view = h('div', { class: 'view' });
  shell.main.replaceChildren(view);
  switch (top) {
    case 'projects':
      if (r.length >= 2) renderProject(view, r[1], r[2] ?? 'settings', r.slice(3));
      else renderProjects(view);
      break;
    case 'maintenance':
      renderNodeMaintenance(view);
      break;
    case 'cluster':
      renderCluster(view);
      break;
    case 'audit':
      renderAudit(view);
      break;
    case 'admin-users':
      renderAdminUsers(view);
      break;
    case 'admin-tokens':
      renderAdminTokens(view);
      break;
    case 'account':
      renderAccount(view, logout);
      break;
    default:
      notFound(view);
  }
  if (focus) view.querySelector<HTMLElement>('h1')?.focus();
}

async function boot(): Promise<void> {
  const el = root();
  replace(el, h('p', { class: 'page-message', role: 'status' }, 'Loading…'));
  try {
    const me = await get<MeAnswer>('/admin/v1/auth/me', { expect401: true });
    startSession(me);
    if (currentRoute().length === 0) history.replaceState(null, '', href('projects'));
    render(false);
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) {
      showLogin(null);
      return;
    }
    replace(
      el,
      h(
        'main',
        { class: 'login', id: 'main' },
        h('h1', null, 'CommonRock portal'),
        errorBox(e),
        button('Try again', () => void boot(), { class: 'primary' }),
      ),
    );
  }
}

onUnauthorized(() => {
  if (!currentUser()) return;
  endSession();
  showLogin('Your session ended; log in again.');
});
onUserChange(showWho);
window.addEventListener('hashchange', () => {
  // On the login screen the new hash is simply where the login will lead.
  if (currentUser()) render(true);
});
void boot();

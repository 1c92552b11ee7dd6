// Who is logged in, as the last /auth/login or /auth/me answered. Memory only.

import { setCsrfToken } from './api.js';
import { AdminUser, LoginAnswer, MeAnswer } from './types.js';

let user: AdminUser | null = null;
let times: MeAnswer['session'] | null = null;
const listeners: (() => void)[] = [];

export function currentUser(): AdminUser | null {
  return user;
}

export function sessionTimes(): MeAnswer['session'] | null {
  return times;
}

/** Records a login or /me answer (and its CSRF token). */
export function startSession(a: LoginAnswer | MeAnswer): void {
  setCsrfToken(a.csrf_token);
  user = a.user;
  times = 'session' in a ? a.session ?? null : null;
  listeners.forEach((f) => f());
}

export function updateUser(u: AdminUser): void {
  if (user && u.id === user.id) {
    user = u;
    listeners.forEach((f) => f());
  }
}

export function endSession(): void {
  setCsrfToken(null);
  user = null;
  times = null;
}

export function onUserChange(f: () => void): void {
  listeners.push(f);
}

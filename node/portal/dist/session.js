import { setCsrfToken } from './api.js';
let user = null;
let times = null;
const listeners = [];
export function currentUser() {
  return user;
}
export function sessionTimes() {
  return times;
}
export function startSession(a) {
  setCsrfToken(a.csrf_token);
  user = a.user;
  times = 'session' in a ? a.session ?? null : null;
  listeners.forEach((f) => f());
}
export function updateUser(u) {
  if (user && u.id === user.id) {
    user = u;
    listeners.forEach((f) => f());
  }
}
export function endSession() {
  setCsrfToken(null);
  user = null;
  times = null;
}
export function onUserChange(f) {
  listeners.push(f);
}

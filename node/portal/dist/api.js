export class ApiError extends Error {
  constructor(status, message, code, issues, retryAfter) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.issues = issues;
    this.retryAfter = retryAfter;
  }
  get network() {
    return this.status === 0;
  }
}
let csrfToken = null;
let unauthorized = null;
export function setCsrfToken(token) {
  csrfToken = token;
}
export function hasCsrfToken() {
  return csrfToken !== null;
}
export function onUnauthorized(handler) {
  unauthorized = handler;
}
export function seg(s) {
  return encodeURIComponent(s);
}
function retryAfterOf(res) {
  const v = res.headers.get('Retry-After');
  if (v === null)
    return null;
  const n = Number.parseInt(v, 10);
  if (Number.isFinite(n) && n >= 0)
    return n;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}
function isObject(v) {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
export function errorFrom(status, body, retryAfter) {
  const detail = isObject(body) ? body['detail'] : undefined;
  let message = `The server answered HTTP ${status}.`;
  let code = null;
  let issues = [];
  if (typeof detail === 'string') {
    message = detail;
  }
  else if (isObject(detail)) {
    code = typeof detail['code'] === 'string' ? detail['code'] : null;
    message = typeof detail['message'] === 'string' ? detail['message'] : code ?? message;
  }
  else if (Array.isArray(detail)) {
    issues = detail.filter(isObject).map((d) => ({
      loc: Array.isArray(d['loc']) ? d['loc'] : [],
      msg: typeof d['msg'] === 'string' ? d['msg'] : 'invalid value',
      type: typeof d['type'] === 'string' ? d['type'] : undefined,
    }));
    message = 'Some values are not valid.';
  }
  if (status === 429) {
    code = code ?? 'rate_limited';
    message = retryAfter !== null ? `Too many attempts, try again in ${retryAfter} s.` : 'Too many attempts, try again later.';
  }
  return new ApiError(status, message, code, issues, retryAfter);
}
async function once(method, path, body, opts) {
  const headers = { Accept: 'application/json' };
  const init = { method, credentials: 'same-origin', headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && method !== 'HEAD' && csrfToken !== null) {
    headers['X-CSRF-Token'] = csrfToken;
  }
  let res;
  try {
    res = await fetch(path, init);
  }
  catch {
    throw new ApiError(0, 'Could not reach the server (network error). Check the connection and try again.', null, [], null);
  }
  const text = await res.text().catch(() => '');
  let parsed = undefined;
  if (text) {
    try {
      parsed = JSON.parse(text);
    }
    catch {
      parsed = undefined;
    }
  }
  if (res.ok) {
    return parsed;
  }
  const err = errorFrom(res.status, parsed, retryAfterOf(res));
  if (res.status === 401 && !opts.expect401 && err.code !== 'invalid_totp' && err.code !== 'invalid_credentials' && unauthorized) {
    unauthorized();
  }
  throw err;
}
export async function api(method, path, body, opts = {}) {
  try {
    return await once(method, path, body, opts);
  }
  catch (e) {
    if (e instanceof ApiError && e.status === 403 && e.code === 'csrf_failed' && method !== 'GET') {
      const me = await once('GET', '/admin/v1/auth/me', undefined, opts);
      setCsrfToken(me.csrf_token);
      return await once(method, path, body, opts);
    }
    throw e;
  }
}
export const get = (path, opts) => api('GET', path, undefined, opts);
export const post = (path, body = {}, opts) => api('POST', path, body, opts);
export const put = (path, body) => api('PUT', path, body);
export const patch = (path, body) => api('PATCH', path, body);
export const del = (path) => api('DELETE', path);

// The only way the page talks to the node: same-origin fetches of the admin JSON API. The CSRF
// token lives in this module's memory only (never in storage or a cookie); after a reload it
// comes back from GET /admin/v1/auth/me.

export interface ValidationIssue {
  loc: (string | number)[];
  msg: string;
  type?: string;
}

/** A failed call, already read: what to tell the user. */
export class ApiError extends Error {
  /** HTTP status; 0 for a network failure. */
  readonly status: number;
  /** `detail.code` of a coded error. */
  readonly code: string | null;
  /** The 422 entries. */
  readonly issues: ValidationIssue[];
  /** Seconds from `Retry-After` (429, 503). */
  readonly retryAfter: number | null;

  constructor(status: number, message: string, code: string | null, issues: ValidationIssue[], retryAfter: number | null) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.issues = issues;
    this.retryAfter = retryAfter;
  }

  get network(): boolean {
    return this.status === 0;
  }
}

let csrfToken: string | null = null;
let unauthorized: (() => void) | null = null;

export function setCsrfToken(token: string | null): void {
  csrfToken = token;
}

export function hasCsrfToken(): boolean {
  return csrfToken !== null;
}

/** Called once when a call other than login answers 401: the session is gone. */
export function onUnauthorized(handler: () => void): void {
  unauthorized = handler;
}

export interface CallOptions {
  /** Do not treat 401 as "session ended" (login itself, the boot-time /me). */
  expect401?: boolean;
}

/** A path segment, percent-encoded. */
export function seg(s: string): string {
  return encodeURIComponent(s);
}

function retryAfterOf(res: Response): number | null {
  const v = res.headers.get('Retry-After');
  if (v === null) return null;
  const n = Number.parseInt(v, 10);
  if (Number.isFinite(n) && n >= 0) return n;
  const at = Date.parse(v);
  return Number.isNaN(at) ? null : Math.max(0, Math.ceil((at - Date.now()) / 1000));
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Reads one of the three error shapes (coded, plain, validation) into an ApiError. */
export function errorFrom(status: number, body: unknown, retryAfter: number | null): ApiError {
  const detail = isObject(body) ? body['detail'] : undefined;
  let message = `The server answered HTTP ${status}.`;
  let code: string | null = null;
  let issues: ValidationIssue[] = [];
  if (typeof detail === 'string') {
    message = detail;
  } else if (isObject(detail)) {
    code = typeof detail['code'] === 'string' ? detail['code'] : null;
    message = typeof detail['message'] === 'string' ? detail['message'] : code ?? message;
  } else if (Array.isArray(detail)) {
    issues = detail.filter(isObject).map((d) => ({
      loc: Array.isArray(d['loc']) ? (d['loc'] as (string | number)[]) : [],
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

async function once<T>(method: string, path: string, body: unknown, opts: CallOptions): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  const init: RequestInit = { method, credentials: 'same-origin', headers, cache: 'no-store' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  if (method !== 'GET' && method !== 'HEAD' && csrfToken !== null) {
    headers['X-CSRF-Token'] = csrfToken;
  }
  let res: Response;
  try {
    res = await fetch(path, init);
  } catch {
    throw new ApiError(0, 'Could not reach the server (network error). Check the connection and try again.', null, [], null);
  }
  const text = await res.text().catch(() => '');
  let parsed: unknown = undefined;
  if (text) {
    try {
      parsed = JSON.parse(text);
    } catch {
      parsed = undefined;
    }
  }
  if (res.ok) {
    return parsed as T;
  }
  const err = errorFrom(res.status, parsed, retryAfterOf(res));
  // 401 `invalid_totp` (a wrong code at TOTP confirm) is an answer about the request, not the
  // end of the session.
  if (res.status === 401 && !opts.expect401 && err.code !== 'invalid_totp' && err.code !== 'invalid_credentials' && unauthorized) {
    unauthorized();
  }
  throw err;
}

/**
 * One admin API call. JSON in and out; non-GET calls carry X-CSRF-Token. A 403 `csrf_failed`
 * (the token changed, e.g. a login in another tab) re-reads the token from /auth/me and retries
 * once: the server refused the first attempt before doing anything.
 */
export async function api<T>(method: string, path: string, body?: unknown, opts: CallOptions = {}): Promise<T> {
  try {
    return await once<T>(method, path, body, opts);
  } catch (e) {
    if (e instanceof ApiError && e.status === 403 && e.code === 'csrf_failed' && method !== 'GET') {
      const me = await once<{ csrf_token: string }>('GET', '/admin/v1/auth/me', undefined, opts);
      setCsrfToken(me.csrf_token);
      return await once<T>(method, path, body, opts);
    }
    throw e;
  }
}

export const get = <T>(path: string, opts?: CallOptions): Promise<T> => api<T>('GET', path, undefined, opts);
export const post = <T>(path: string, body: unknown = {}, opts?: CallOptions): Promise<T> => api<T>('POST', path, body, opts);
export const put = <T>(path: string, body: unknown): Promise<T> => api<T>('PUT', path, body);
export const patch = <T>(path: string, body: unknown): Promise<T> => api<T>('PATCH', path, body);
export const del = <T>(path: string): Promise<T> => api<T>('DELETE', path);

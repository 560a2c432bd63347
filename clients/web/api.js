// A small client for this backend, meant to be copied into a web front-end (no dependencies, no build step).
//
// Token handling, and why:
// - Both tokens live in this module's memory only, never in localStorage, sessionStorage or a readable
//   cookie: anything stored there is readable by any script that ever runs on the page (an XSS, a
//   compromised dependency), and the refresh token is a long-lived credential. The price is that a reload
//   signs the user out; a product that must survive reloads should put a small same-site backend in front
//   of this API that keeps the refresh token in an HttpOnly, Secure, SameSite=Strict cookie.
// - Tokens travel in the Authorization header, never in cookies, so the API never needs CORS credentials
//   and cross-site requests cannot ride on the user's session.
// - An access token lives 15 minutes (ACCESS_TOKEN_TTL_S). On `401 invalid_token` the client refreshes
//   once and repeats the request. Refresh tokens rotate: every refresh answers a new pair and the old
//   refresh token becomes invalid; presenting an old one again is treated as theft and ends the whole
//   session (`401 refresh_token_reused`). So refreshes are single-flight: concurrent 401s wait for the
//   one refresh in progress instead of each sending the same (soon rotated) token.
// - `401 session_ended` (logout elsewhere, password change, reuse detected) is final: sign in again.
//
// Errors: every error answer has one shape, {error, code, reason, details?}; code on `reason`, show `error`.

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.error) || `HTTP ${status}`);
    this.status = status;
    this.reason = (body && body.reason) || 'http_' + status;
    this.details = (body && body.details) || null;
  }
}

// A random Idempotency-Key (crypto.randomUUID needs a secure context; getRandomValues does not).
export function idempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

export function createClient({baseUrl = '', onSessionEnded = () => {}, onRequest = () => {}} = {}) {
  let accessToken = null;
  let refreshToken = null;
  let refreshing = null; // the refresh in flight, shared by every request that hit a 401 meanwhile
  let refreshes = 0;

  function keep(pair) {
    accessToken = pair.accessToken;
    refreshToken = pair.refreshToken;
  }

  function forget(reason) {
    const hadSession = accessToken !== null;
    accessToken = refreshToken = null;
    if (hadSession) onSessionEnded(reason);
  }

  async function send(method, path, body, headers, withToken) {
    const h = {Accept: 'application/json', ...headers};
    if (body !== undefined) h['Content-Type'] = 'application/json';
    if (withToken && accessToken) h.Authorization = 'Bearer ' + accessToken;
    const response = await fetch(baseUrl + path, {
      method, headers: h, body: body === undefined ? undefined : JSON.stringify(body),
      credentials: 'omit', // tokens, not cookies
    });
    let data = null;
    const type = response.headers.get('Content-Type') || '';
    if (type.includes('application/json')) data = await response.json();
    onRequest({method, path, status: response.status, reason: data && data.reason});
    return {status: response.status, data, response};
  }

  function refresh() {
    if (!refreshing) {
      const token = refreshToken;
      refreshing = (async () => {
        if (!token) throw new ApiError(401, {reason: 'session_ended', error: 'Sign in again.'});
        const r = await send('POST', '/api/auth/refresh', {refreshToken: token}, {}, false);
        if (r.status !== 200) {
          forget(r.data && r.data.reason);
          throw new ApiError(r.status, r.data);
        }
        refreshes += 1;
        keep(r.data);
      })().finally(() => { refreshing = null; });
    }
    return refreshing;
  }

  // One API call: JSON in and out; refresh-and-repeat once on an expired access token.
  async function call(method, path, {body, headers = {}, auth = true, accept = [200, 201, 202, 204]} = {}) {
    if (auth && refreshing) await refreshing.catch(() => {});
    let r = await send(method, path, body, headers, auth);
    if (auth && r.status === 401 && r.data && r.data.reason === 'invalid_token' && refreshToken) {
      await refresh(); // the same headers go again: an Idempotency-Key stays the same on the repeat
      r = await send(method, path, body, headers, auth);
    }
    if (auth && r.status === 401) forget(r.data && r.data.reason);
    if (!accept.includes(r.status)) throw new ApiError(r.status, r.data);
    return {status: r.status, data: r.data};
  }

  // A protected binary resource (the postcard PNG at imageUrl) as a blob: URL for <img src>.
  async function blobUrl(url) {
    const get = () => fetch(url, {headers: {Authorization: 'Bearer ' + accessToken}, credentials: 'omit'});
    let response = await get();
    if (response.status === 401 && refreshToken) {
      await refresh();
      response = await get();
    }
    onRequest({method: 'GET', path: new URL(url, location.href).pathname, status: response.status});
    if (!response.ok) throw new ApiError(response.status, null);
    return URL.createObjectURL(await response.blob());
  }

  return {
    async register(email, password) {
      const r = await call('POST', '/api/auth/register', {body: {email, password}, auth: false});
      keep(r.data);
      return r.data;
    },
    async login(email, password) {
      const r = await call('POST', '/api/auth/login', {body: {email, password}, auth: false});
      keep(r.data);
      return r.data;
    },
    async logout() {
      try { await call('POST', '/api/auth/logout', {body: {}}); } finally { forget('logged_out'); }
    },
    call,
    blobUrl,
    get signedIn() { return accessToken !== null; },
    get refreshCount() { return refreshes; },
  };
}

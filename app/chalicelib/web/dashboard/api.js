// SESami's API from the browser: the session (tokens from /auth/*), authenticated calls, errors.
// Every URL is relative to the page, so the dashboard works at / locally and under the API
// Gateway stage (/api/) in production.

// The ID and access tokens live in this tab's sessionStorage (gone when it closes); the refresh
// token never reaches scripts: the server keeps it in an HttpOnly, SameSite=Strict cookie.
const KEY = "sesami.session";
const SIGNED_IN = "sesami.signed-in"; // no secret: only whether a refresh cookie may exist

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export const session = {
  get() {
    try {
      return JSON.parse(sessionStorage.getItem(KEY) || "null");
    } catch {
      return null;
    }
  },
  save(tokens, email) {
    const current = this.get() || {};
    const value = {
      email: email || current.email,
      id_token: tokens.id_token,
      access_token: tokens.access_token,
      expires_at: Date.now() + (tokens.expires_in || 3600) * 1000,
    };
    sessionStorage.setItem(KEY, JSON.stringify(value));
    localStorage.setItem(SIGNED_IN, "1");
    return value;
  },
  clear() {
    sessionStorage.removeItem(KEY);
    localStorage.removeItem(SIGNED_IN);
  },
};

function url(path, query) {
  const u = new URL(path.replace(/^\//, ""), document.baseURI);
  for (const [name, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === "") continue;
    for (const v of Array.isArray(value) ? value : [value]) u.searchParams.append(name, v);
  }
  return u;
}

async function errorFrom(response) {
  let body = null;
  try {
    body = await response.json();
  } catch {
    /* not JSON */
  }
  const e = (body && body.error) || {};
  const message =
    e.message || (body && (body.message || body.Message)) || `${response.status} ${response.statusText}`;
  return new ApiError(response.status, e.code || "http_" + response.status, message, e.details);
}

let refreshing = null;

function emailOf(idToken) {
  try {
    const payload = idToken.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
    return JSON.parse(atob(payload)).email || "";
  } catch {
    return "";
  }
}

// New tokens from the refresh cookie (sent by the browser, same origin only).
async function refresh() {
  refreshing =
    refreshing ||
    fetch(url("auth/refresh"), {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json" },
      body: "{}",
    })
      .then(async (r) => {
        if (!r.ok) return false;
        const tokens = await r.json();
        session.save(tokens, (session.get() || {}).email || emailOf(tokens.id_token));
        return true;
      })
      .catch(() => false)
      .finally(() => {
        refreshing = null;
      });
  return refreshing;
}

/** A new tab, or a reload after the tab's session ended: sign in again from the cookie (only
 * when this browser signed in before: a flag, never a token, says so). */
export async function resume() {
  if (session.get()) return true;
  return localStorage.getItem(SIGNED_IN) ? refresh() : false;
}

// Called when the session cannot be renewed (the app shows the sign-in page), and when SESami
// says the caller is an invitee who has not accepted yet (the app shows the invitation).
export const hooks = { signedOut: () => {}, invited: () => {} };

/** A 403 that means "you are invited and have not accepted yet". */
export function isInvitee(error) {
  const d = (error && error.status === 403 && error.details) || {};
  return d.role === "invited" || d.permission === "invitation:accept";
}

/** An authenticated call. Returns parsed JSON (or the Response when raw is set). */
export async function call(method, path, { query, body, headers, raw } = {}) {
  let s = session.get();
  if (!s) {
    hooks.signedOut();
    throw new ApiError(401, "unauthorized", "please sign in");
  }
  if (s.expires_at - Date.now() < 60_000) {
    await refresh();
    s = session.get();
  }
  const send = () =>
    fetch(url(path, query), {
      method,
      headers: {
        Authorization: `Bearer ${session.get().id_token}`,
        ...(body !== undefined ? { "Content-Type": "application/json" } : {}),
        ...(headers || {}),
      },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
  let response;
  try {
    response = await send();
    if (response.status === 401 && (await refresh())) response = await send();
  } catch (e) {
    throw new ApiError(0, "network", `SESami cannot be reached (${e.message}). Check your connection.`);
  }
  if (response.status === 401) {
    session.clear();
    hooks.signedOut();
  }
  if (!response.ok) {
    const error = await errorFrom(response);
    if (isInvitee(error) && !path.replace(/^\//, "").startsWith("invitation")) hooks.invited();
    throw error;
  }
  if (raw) return response;
  return response.status === 204 ? null : response.json();
}

/** A public call to /auth/*. */
export async function auth(action, body) {
  let response;
  try {
    response = await fetch(url(`auth/${action}`), {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(body),
    });
  } catch (e) {
    throw new ApiError(0, "network", `SESami cannot be reached (${e.message}).`);
  }
  if (!response.ok) throw await errorFrom(response);
  return response.json();
}

export const get = (path, query) => call("GET", path, { query });

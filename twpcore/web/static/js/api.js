// The console's only way to the server: the public JSON API and the events WebSocket, with the
// token the login page stored for this tab (sessionStorage: closing the tab logs out).

const KEYS = { admin: "twp.console.admin", user: "twp.console.user" };

export class ApiError extends Error {
  constructor(status, body) {
    super(body && body.detail ? body.detail : `HTTP ${status}`);
    this.status = status;
    this.error = (body && body.error) || "error";
    this.detail = this.message;
    this.field = (body && body.field) || null;
  }
}

export function session(kind) {
  try {
    return JSON.parse(sessionStorage.getItem(KEYS[kind]) || "null");
  } catch {
    return null;
  }
}

export function saveSession(kind, data) {
  sessionStorage.setItem(KEYS[kind], JSON.stringify(data));
}

export function clearSession(kind) {
  sessionStorage.removeItem(KEYS[kind]);
}

/** Call the API as the admin or the user of this tab; answers the JSON body or throws ApiError. */
export async function api(kind, method, path, body) {
  const headers = { Accept: "application/json" };
  const current = session(kind);
  if (current && current.token) headers.Authorization = `Bearer ${current.token}`;
  const init = { method, headers };
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(path, init);
  if (resp.status === 204) return null;
  let data;
  try {
    data = await resp.json();
  } catch {
    data = { error: "bad_response", detail: `HTTP ${resp.status} ${resp.statusText}` };
  }
  if (!resp.ok) {
    if (resp.status === 401 && current && !path.startsWith("/api/v1/auth/")) {
      clearSession(kind);
      location.assign("/?expired=1");
    }
    throw new ApiError(resp.status, data);
  }
  return data;
}

/** Follow /api/v1/events; reconnects with a growing delay. onState gets "open" or "closed". */
export function events(kind, onEvent, onState) {
  let delay = 500;
  let stopped = false;
  let socket = null;
  const connect = () => {
    const current = session(kind);
    if (!current || stopped) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    socket = new WebSocket(`${scheme}://${location.host}/api/v1/events?access_token=${encodeURIComponent(current.token)}`);
    socket.onopen = () => {
      delay = 500;
      if (onState) onState("open");
    };
    socket.onmessage = (msg) => {
      try {
        onEvent(JSON.parse(msg.data));
      } catch (exc) {
        console.error("event handler failed", exc);
      }
    };
    socket.onclose = () => {
      if (onState) onState("closed");
      if (!stopped) setTimeout(connect, delay);
      delay = Math.min(delay * 2, 15000);
    };
  };
  connect();
  return { stop: () => { stopped = true; if (socket) socket.close(); } };
}

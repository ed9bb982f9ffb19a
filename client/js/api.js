// Signalling over HTTP (see the README and /openapi.json).

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

// The room token from the invitation link (?token=…), sent with every call; kept in memory only.
let token = null;
export function useToken(value) {
  token = value || null;
}

export function headersFor(body, bearer = token) {
  return {
    ...(body === undefined ? {} : { "content-type": "application/json" }),
    ...(bearer ? { authorization: `Bearer ${bearer}` } : {}),
  };
}

async function request(path, body) {
  const response = await fetch(path, {
    method: body === undefined ? "GET" : "POST",
    headers: headersFor(body),
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data.detail || `HTTP ${response.status}`);
  return data;
}

// ICE servers as the gateway sends them (null username/credential) → RTCIceServer dictionaries.
export function rtcIceServers(servers = []) {
  return servers.map(({ urls, username, credential }) => ({
    urls, ...(username ? { username } : {}), ...(credential ? { credential } : {}),
  }));
}

// Where to join a room: null when here, else the URL of the gateway that holds it (same query).
export function gatewayFor(entry, here, query) {
  if (!entry.gateway_url) return null;
  const there = new URL(entry.gateway_url);
  if (there.origin === new URL(here).origin) return null;
  there.pathname = "/";
  there.search = new URLSearchParams(query).toString();
  return there.toString();
}

export const api = {
  languages: () => request("/api/languages"),
  entry: (room) => request(`/api/rooms/${encodeURIComponent(room)}/entry`),
  join: (room, body) => request(`/api/rooms/${encodeURIComponent(room)}/join`, body),
  renegotiate: (room, id, body) => request(`/api/rooms/${encodeURIComponent(room)}/participants/${id}/offer`, body),
  floor: (room, id, secret, action) => request(`/api/rooms/${encodeURIComponent(room)}/participants/${id}/floor`, { secret, action }),
  mute: (room, id, secret, muted) => request(`/api/rooms/${encodeURIComponent(room)}/participants/${id}/mute`, { secret, muted }),
  lipsync: (room, id, secret, enabled) => request(`/api/rooms/${encodeURIComponent(room)}/participants/${id}/lipsync`, { secret, enabled }),
  leave: (room, id, secret) => request(`/api/rooms/${encodeURIComponent(room)}/participants/${id}/leave`, { secret }),
};

// Signalling over HTTP (see the README and /openapi.json).

export class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

async function request(path, body) {
  const response = await fetch(path, {
    method: body === undefined ? "GET" : "POST",
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  if (response.status === 204) return null;
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, data.detail || `HTTP ${response.status}`);
  return data;
}

export const api = {
  languages: () => request("/api/languages"),
  join: (room, body) => request(`/api/rooms/${encodeURIComponent(room)}/join`, body),
  renegotiate: (room, id, body) => request(`/api/rooms/${encodeURIComponent(room)}/participants/${id}/offer`, body),
  floor: (room, id, secret, action) => request(`/api/rooms/${encodeURIComponent(room)}/participants/${id}/floor`, { secret, action }),
  mute: (room, id, secret, muted) => request(`/api/rooms/${encodeURIComponent(room)}/participants/${id}/mute`, { secret, muted }),
  leave: (room, id, secret) => request(`/api/rooms/${encodeURIComponent(room)}/participants/${id}/leave`, { secret }),
};

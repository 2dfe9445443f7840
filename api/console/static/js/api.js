// Every call to the API goes through here: it adds the user's key and turns problem+json
// answers into ApiError, so pages show the API's own `code` and `detail`.

const KEY = "flowfleet.console.key";

export const getKey = () => sessionStorage.getItem(KEY);
export const setKey = (key) => (key ? sessionStorage.setItem(KEY, key) : sessionStorage.removeItem(KEY));

export class ApiError extends Error {
  constructor(status, problem) {
    super(problem.detail || problem.title || `HTTP ${status}`);
    this.status = status;
    this.problem = problem; // {type, title, status, detail, code, ...extras like problems}
  }
}

function headers(extra = {}) {
  const key = getKey();
  return key ? { ...extra, Authorization: `Bearer ${key}` } : extra;
}

async function failure(response) {
  let problem;
  try {
    problem = await response.json();
  } catch {
    problem = { detail: response.statusText };
  }
  if (response.status === 401) window.dispatchEvent(new CustomEvent("flowfleet:unauthorized"));
  return new ApiError(response.status, problem || {});
}

// api("/v1/flows"), api(path, {method: "POST", body: {...}}), or {raw: "text"} to send as is.
export async function api(path, { method = "GET", body, raw, signal } = {}) {
  const send = raw !== undefined ? raw : body !== undefined ? JSON.stringify(body) : undefined;
  const extra = send !== undefined ? { "Content-Type": "application/json" } : {};
  const response = await fetch(path, { method, headers: headers({ Accept: "application/json", ...extra }), body: send, signal });
  if (!response.ok) throw await failure(response);
  if (response.status === 204) return null;
  const text = await response.text();
  return text ? JSON.parse(text) : null;
}

// Server-Sent Events over fetch(): EventSource cannot send the Authorization header.
// Yields {event, id, data} with data parsed as JSON where it is JSON.
export async function* sse(path, { signal } = {}) {
  const response = await fetch(path, { headers: headers({ Accept: "text/event-stream" }), signal });
  if (!response.ok) throw await failure(response);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let fields = {};
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    buffer += value;
    // A chunk can end between "\r" and "\n": hold a trailing "\r" for the next chunk.
    const heldCR = buffer.endsWith("\r");
    const lines = (heldCR ? buffer.slice(0, -1) : buffer).replace(/\r\n?/g, "\n").split("\n");
    buffer = lines.pop() + (heldCR ? "\r" : "");
    for (const line of lines) {
      if (line === "") {
        if (fields.data !== undefined) yield { event: fields.event || "message", id: fields.id, data: parseData(fields.data) };
        fields = {};
      } else if (!line.startsWith(":")) {
        const colon = line.indexOf(":");
        const name = colon < 0 ? line : line.slice(0, colon);
        let val = colon < 0 ? "" : line.slice(colon + 1);
        if (val.startsWith(" ")) val = val.slice(1);
        fields[name] = name === "data" && fields.data !== undefined ? `${fields.data}\n${val}` : val;
      }
    }
  }
}

function parseData(text) {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

// Resolves to null when the endpoint does not exist on this server (an older API).
export async function optional(path) {
  try {
    return await api(path);
  } catch (error) {
    // A route this server lacks answers the generic "not_found"; a missing row says which.
    if (error.status === 404 && error.problem.code === "not_found") return null;
    throw error;
  }
}

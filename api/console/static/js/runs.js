// Runs: newest first, filtered by flow, session, status and error code, 200 a page
// (cursor paging: the API answers next_cursor).
import { api } from "./api.js";
import { html, useState, useLoad, Problem, Status, fmtTime, duration } from "./ui.js";

export const PAGE = 200;
const FILTERS = ["flow_id", "session_id", "status", "error_code"];
const STATUSES = ["", "queued", "running", "succeeded", "failed", "cancelled"];

export function RunsTable({ runs }) {
  return html`<table aria-label="Runs">
    <thead><tr><th>Run</th><th>Flow</th><th>Session</th><th>Status</th><th>Error</th><th>Created</th><th>Took</th><th>Attempts</th></tr></thead>
    <tbody>
      ${runs.map(
        (r) => html`<tr key=${r.id}>
          <td class="mono"><a href=${`#/runs/${r.id}`}>${r.id}</a></td>
          <td>${r.flow_id}</td><td class="mono">${r.session_id || ""}</td>
          <td><${Status} status=${r.status} /></td><td>${r.error?.code || ""}</td>
          <td>${fmtTime(r.created_at)}</td><td class="num">${duration(r.started_at || r.created_at, r.finished_at)}</td>
          <td class="num">${r.attempts}</td>
        </tr>`,
      )}
    </tbody>
  </table>`;
}

export function RunsPage({ query }) {
  const filters = Object.fromEntries(FILTERS.map((f) => [f, query.get(f) || ""]));
  const key = FILTERS.map((f) => filters[f]).join("|");
  const [cursors, setCursors] = useState([null]); // cursors[i] fetches page i
  const [page, setPage] = useState(0);
  const [lastKey, setLastKey] = useState(key);
  if (key !== lastKey) {
    setLastKey(key);
    setCursors([null]);
    setPage(0);
  }
  const [data, error, reload] = useLoad(() => {
    const params = new URLSearchParams({ limit: String(PAGE) });
    for (const f of FILTERS) if (filters[f]) params.set(f, filters[f]);
    if (cursors[page]) params.set("cursor", cursors[page]);
    return api(`/v1/runs?${params}`);
  }, [key, page]);

  function apply(event) {
    event.preventDefault();
    const form = new FormData(event.target);
    const params = new URLSearchParams();
    for (const f of FILTERS) if (form.get(f)) params.set(f, form.get(f));
    location.hash = `#/runs${params.size ? `?${params}` : ""}`;
  }
  function next() {
    setCursors((c) => [...c.slice(0, page + 1), data.next_cursor]);
    setPage(page + 1);
  }

  return html`<h1>Runs</h1>
    <form class="card row" onSubmit=${apply} aria-label="Filter runs" key=${key}>
      <label>Flow <input name="flow_id" value=${filters.flow_id} /></label>
      <label>Session <input name="session_id" value=${filters.session_id} /></label>
      <label>Status <select name="status" value=${filters.status}>${STATUSES.map((s) => html`<option value=${s}>${s || "any"}</option>`)}</select></label>
      <label>Error code <input name="error_code" value=${filters.error_code} placeholder="exhausted_retries" /></label>
      <button type="submit">Filter</button>
      <button type="button" class="secondary" onClick=${reload}>Refresh</button>
    </form>
    <${Problem} error=${error} />
    ${data && html`<${RunsTable} runs=${data.items} />`}
    ${data && !data.items.length && html`<p class="muted">No runs match.</p>`}
    <div class="row" style="margin-top:.6rem">
      <button class="secondary" disabled=${page === 0} onClick=${() => setPage(page - 1)}>Previous page</button>
      <span class="muted">page ${page + 1}${data ? ` · ${data.items.length} runs` : ""}</span>
      <button class="secondary" disabled=${!data?.next_cursor} onClick=${next}>Next page</button>
    </div>`;
}

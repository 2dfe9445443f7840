// Flows: the list, uploading a LangFlow export (a refusal lists what to fix per node),
// and one flow's page: its graph, components and versions.
import { api, optional } from "./api.js";
import { html, useState, useLoad, Problem, fmtTime, Json } from "./ui.js";
import { FlowGraph } from "./graph.js";

const slug = (name) => name.replace(/\.json$/i, "").toLowerCase().replace(/[^a-z0-9_-]+/g, "-").replace(/^-+|-+$/g, "").slice(0, 64);

function Upload({ onUploaded }) {
  const [flowId, setFlowId] = useState("");
  const [error, setError] = useState(null);
  const [done, setDone] = useState(null);
  const [busy, setBusy] = useState(false);
  async function submit(event) {
    event.preventDefault();
    const file = event.target.elements.file.files[0];
    if (!file) return;
    const id = flowId || slug(file.name);
    const text = await file.text();
    setBusy(true);
    setError(null);
    setDone(null);
    try {
      const flow = await api(`/v1/flows/${encodeURIComponent(id)}`, { method: "PUT", raw: text });
      setDone(flow);
      onUploaded();
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  }
  return html`<form class="card" onSubmit=${submit} aria-label="Upload a flow">
    <h2>Upload a LangFlow export</h2>
    <div class="row">
      <label>Export file (.json) <input name="file" type="file" accept=".json,application/json" required
        onChange=${(e) => !flowId && e.target.files[0] && setFlowId(slug(e.target.files[0].name))} /></label>
      <label>Flow id <input name="flow_id" value=${flowId} onInput=${(e) => setFlowId(e.target.value)} pattern="[A-Za-z0-9_.-]+" /></label>
      <button type="submit" disabled=${busy}>Upload</button>
    </div>
    ${done && html`<p class="notice" role="status">Uploaded <a href=${`#/flows/${encodeURIComponent(done.id)}`}>${done.id}</a>, version <code>${done.version}</code>.</p>`}
    <${Problem} error=${error} title="The export was refused — fix these and upload again" />
  </form>`;
}

export function FlowsPage() {
  const [data, error, reload] = useLoad(() => api("/v1/flows"), []);
  return html`<h1>Flows</h1>
    <${Upload} onUploaded=${reload} />
    <${Problem} error=${error} />
    ${data &&
    html`<table aria-label="Flows">
      <thead><tr><th>Id</th><th>Name</th><th>Kind</th><th>Owner</th><th>Version</th><th>Updated</th><th></th></tr></thead>
      <tbody>
        ${data.items.map(
          (f) => html`<tr>
            <td><a href=${`#/flows/${encodeURIComponent(f.id)}`}>${f.id}</a></td>
            <td>${f.name}</td><td>${f.kind}</td><td class="mono">${f.owner}</td>
            <td class="mono">${f.version.slice(0, 12)}</td><td>${fmtTime(f.updated_at)}</td>
            <td><a href=${`#/playground/${encodeURIComponent(f.id)}`}>Chat</a></td>
          </tr>`,
        )}
      </tbody>
    </table>`}
    ${data && !data.items.length && html`<p class="muted">No flows yet: upload an export above.</p>`}`;
}

function Versions({ id }) {
  const [data, error] = useLoad(() => optional(`/v1/flows/${encodeURIComponent(id)}/versions`), [id]);
  if (error) return html`<${Problem} error=${error} />`;
  if (data === undefined) return html`<p class="muted">Loading versions…</p>`;
  if (data === null) return html`<p class="muted">This server does not list versions yet.</p>`;
  const items = data.items || data;
  return html`<table aria-label="Versions">
    <thead><tr><th>Version</th><th>Created</th><th>Current</th></tr></thead>
    <tbody>${items.map(
      (v) => html`<tr><td class="mono">${v.version}</td><td>${fmtTime(v.created_at)}</td><td>${v.current ? "yes" : ""}</td></tr>`,
    )}</tbody>
  </table>`;
}

function GraphFromFile({ onLoad }) {
  return html`<label>Draw an export from a file <input type="file" accept=".json,application/json"
    onChange=${async (e) => e.target.files[0] && onLoad(JSON.parse(await e.target.files[0].text()))} /></label>`;
}

export function FlowPage({ id }) {
  const [flow, error] = useLoad(() => api(`/v1/flows/${encodeURIComponent(id)}`), [id]);
  const [exported, setExported] = useState(null); // an export opened from a file
  if (error) return html`<h1>Flow ${id}</h1><${Problem} error=${error} />`;
  if (!flow) return html`<p class="muted">Loading…</p>`;
  return html`<h1>Flow ${flow.id} <small class="muted">${flow.name}</small></h1>
    <p>${flow.description} <a href=${`#/playground/${encodeURIComponent(flow.id)}`}>Chat with it</a> ·
      <a href=${`#/runs?flow_id=${encodeURIComponent(flow.id)}`}>Its runs</a></p>
    <section class="card"><h2>Graph</h2>
      ${exported || flow.graph
        ? html`<${FlowGraph} exported=${exported || flow.graph} />`
        : html`<p class="muted">This server does not answer a flow's graph (a Python flow has none); open its export to draw it.</p>`}
      <${GraphFromFile} onLoad=${setExported} />
    </section>
    <div class="grid2">
      <section class="card"><h2>Components</h2>
        <table aria-label="Components"><thead><tr><th>Node</th><th>Type</th></tr></thead>
          <tbody>${flow.components.map((c) => html`<tr><td class="mono">${c.id || c.node_id || ""}</td><td>${c.type || c.component || JSON.stringify(c)}</td></tr>`)}</tbody></table>
        <p>Models: ${flow.models.join(", ") || "none"} · backends: ${flow.backends.join(", ") || "none"}</p>
        <h2>Inputs</h2><${Json} value=${flow.inputs} label="Inputs" />
      </section>
      <section class="card"><h2>Versions</h2><p>Current: <code>${flow.version}</code> (${fmtTime(flow.updated_at)})</p><${Versions} id=${flow.id} /></section>
    </div>`;
}

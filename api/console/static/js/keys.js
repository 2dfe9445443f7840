// Keys (admin only; the API refuses others): list, create (its value shown once), revoke.
import { api } from "./api.js";
import { html, useState, useLoad, Problem, fmtTime } from "./ui.js";

const SCOPES = ["runs:read", "runs:write", "flows:write", "admin"];

export function KeysPage() {
  const [data, error, reload] = useLoad(() => api("/v1/keys"), []);
  const [created, setCreated] = useState(null);
  const [actionError, setActionError] = useState(null);

  async function create(event) {
    event.preventDefault();
    const form = new FormData(event.target);
    setActionError(null);
    try {
      setCreated(await api("/v1/keys", { method: "POST", body: { name: form.get("name"), scopes: form.getAll("scopes") } }));
      event.target.reset();
      reload();
    } catch (err) {
      setActionError(err);
    }
  }
  async function revoke(id) {
    setActionError(null);
    try {
      await api(`/v1/keys/${encodeURIComponent(id)}`, { method: "DELETE" });
      reload();
    } catch (err) {
      setActionError(err);
    }
  }

  return html`<h1>API keys</h1>
    <form class="card" onSubmit=${create} aria-label="Create a key">
      <div class="row">
        <label>Name <input name="name" required maxlength="100" /></label>
        <fieldset class="row"><legend class="muted">Scopes</legend>
          ${SCOPES.map((s) => html`<label class="check"><input type="checkbox" name="scopes" value=${s} checked=${s.startsWith("runs")} /> ${s}</label>`)}
        </fieldset>
        <button type="submit">Create key</button>
      </div>
      ${created &&
      html`<div class="secret" role="status">Key <strong>${created.name}</strong> created. Copy it now; it is shown only once:
        <output aria-label="New key" class="mono">${created.key}</output></div>`}
    </form>
    <${Problem} error=${error || actionError} />
    ${data &&
    html`<table aria-label="Keys"><thead><tr><th>Id</th><th>Name</th><th>Scopes</th><th>Created</th><th>Revoked</th><th></th></tr></thead>
      <tbody>${data.items.map(
        (k) => html`<tr><td class="mono">${k.id}</td><td>${k.name}</td><td>${k.scopes.join(", ")}</td><td>${fmtTime(k.created_at)}</td>
          <td>${fmtTime(k.revoked_at)}</td>
          <td>${!k.revoked_at && html`<button class="danger" onClick=${() => revoke(k.id)} aria-label=${`Revoke ${k.name}`}>Revoke</button>`}</td></tr>`,
      )}</tbody></table>`}`;
}

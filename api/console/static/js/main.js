// The console's shell: sign-in with an API key, the navigation and a hash router.
import { api, getKey, setKey } from "./api.js";
import { html, render, useState, useEffect, Problem } from "./ui.js";
import { FlowsPage, FlowPage } from "./flows.js";
import { Playground } from "./playground.js";
import { RunsPage } from "./runs.js";
import { RunPage } from "./run.js";
import { FleetPage } from "./fleet.js";
import { KeysPage } from "./keys.js";

// "#/runs/abc?x=1" -> {page: "runs", arg: "abc", query: URLSearchParams("x=1")}
function route() {
  const [path, search] = location.hash.replace(/^#\/?/, "").split("?");
  const [page, ...rest] = path.split("/");
  return { page: page || "flows", arg: rest.length ? decodeURIComponent(rest.join("/")) : null, query: new URLSearchParams(search || "") };
}

function SignIn({ onSignedIn }) {
  const [error, setError] = useState(null);
  async function submit(event) {
    event.preventDefault();
    const key = new FormData(event.target).get("key").trim();
    setKey(key);
    try {
      await api("/v1/flows"); // any key with runs:read may use the console
      onSignedIn();
    } catch (err) {
      setKey(null);
      setError(err);
    }
  }
  return html`<main>
    <h1>flowfleet console</h1>
    <form class="card" onSubmit=${submit} aria-label="Sign in">
      <p>Paste an API key (<code>flowfleet keys create</code> prints one). It stays in this tab only.</p>
      <label>API key <input name="key" type="password" autocomplete="off" required size="48" /></label>
      <button type="submit">Sign in</button>
      <${Problem} error=${error} title="Sign-in failed" />
    </form>
  </main>`;
}

const PAGES = [
  ["flows", "Flows"],
  ["playground", "Playground"],
  ["runs", "Runs"],
  ["fleet", "Fleet"],
  ["keys", "Keys"],
];

function Shell({ onSignOut }) {
  const [where, setWhere] = useState(route());
  const [admin, setAdmin] = useState(null);
  useEffect(() => {
    const onHash = () => setWhere(route());
    addEventListener("hashchange", onHash);
    // Only an admin key may list keys: the answer says which pages to offer.
    api("/v1/keys").then(() => setAdmin(true), (err) => setAdmin(err.status !== 403 && err.status !== 401));
    return () => removeEventListener("hashchange", onHash);
  }, []);
  const { page, arg, query } = where;
  const pages = PAGES.filter(([id]) => id !== "keys" || admin);
  let body;
  if (page === "flows") body = arg ? html`<${FlowPage} id=${arg} />` : html`<${FlowsPage} />`;
  else if (page === "playground") body = html`<${Playground} flowId=${arg} />`;
  else if (page === "runs") body = arg ? html`<${RunPage} id=${arg} />` : html`<${RunsPage} query=${query} />`;
  else if (page === "fleet") body = html`<${FleetPage} />`;
  else if (page === "keys") body = html`<${KeysPage} />`;
  else body = html`<p>No page “${page}”.</p>`;
  return html`<header>
      <span class="brand">flowfleet</span>
      <nav aria-label="Main"><ul>
        ${pages.map(([id, label]) => html`<li><a href=${`#/${id}`} aria-current=${page === id ? "page" : null}>${label}</a></li>`)}
      </ul></nav>
      <span class="who">${admin ? "admin key" : "key"}
        <button class="secondary" onClick=${onSignOut}>Sign out</button></span>
    </header>
    <main>${body}</main>`;
}

function App() {
  const [signedIn, setSignedIn] = useState(Boolean(getKey()));
  useEffect(() => {
    const out = () => {
      setKey(null);
      setSignedIn(false);
    };
    addEventListener("flowfleet:unauthorized", out);
    return () => removeEventListener("flowfleet:unauthorized", out);
  }, []);
  if (!signedIn) return html`<${SignIn} onSignedIn=${() => setSignedIn(true)} />`;
  return html`<${Shell} onSignOut=${() => (setKey(null), setSignedIn(false))} />`;
}

const root = document.getElementById("app");
root.textContent = "";
render(html`<${App} />`, root);

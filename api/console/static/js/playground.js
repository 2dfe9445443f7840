// Playground: chat with a flow in a session. Each message is a run (POST .../runs with the
// session id); its events stream in over SSE, so tokens and tool calls appear as they happen.
import { api, sse } from "./api.js";
import { html, useState, useRef, useEffect, useLoad, Problem } from "./ui.js";

const newSession = () => `console-${Math.random().toString(36).slice(2, 10)}`;

function parseTweaks(text) {
  if (!text.trim()) return {};
  const value = JSON.parse(text); // throws with the position of the mistake
  if (typeof value !== "object" || Array.isArray(value) || value === null) throw new Error("tweaks must be a JSON object: {\"<component id>\": {\"<field>\": value}}");
  return value;
}

function Turn({ turn }) {
  return html`<div class="msg user" aria-label="You said">${turn.input}</div>
    <div class="msg assistant" aria-label="Flow answered" aria-busy=${turn.done ? "false" : "true"}>
      ${turn.tools.map(
        (t) => html`<div class="tool" aria-label=${`Tool call ${t.name}`}>
          🔧 <strong>${t.name}</strong> <code>${JSON.stringify(t.args || {})}</code>
          ${t.result !== undefined && html`<div>→ <span class=${t.status === "error" ? "kind-error" : ""}>${t.result}</span></div>`}
        </div>`,
      )}
      <span data-testid="answer">${turn.text}</span>
      ${turn.error && html`<div class="kind-error" role="alert">${turn.error.code}: ${turn.error.message}</div>`}
      <div class="muted">
        ${turn.runId && html`<a href=${`#/runs/${turn.runId}`}>run ${turn.runId}</a>`}
        ${turn.status && html` · ${turn.status}`} ${turn.tokens > 0 && html` · ${turn.tokens} token events`}
      </div>
    </div>`;
}

export function Playground({ flowId }) {
  const [flows] = useLoad(() => api("/v1/flows"), []);
  const [flow, setFlow] = useState(flowId || "");
  const [session, setSession] = useState(newSession);
  const [tweaks, setTweaks] = useState("");
  const [tweaksError, setTweaksError] = useState(null);
  const [turns, setTurns] = useState([]);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(null); // the run id being streamed
  const chat = useRef(null);

  useEffect(() => {
    if (!flow && flows?.items.length) setFlow(flows.items[0].id);
  }, [flows]);
  useEffect(() => {
    if (chat.current) chat.current.scrollTop = chat.current.scrollHeight;
  }, [turns]);

  const update = (index, change) => setTurns((all) => all.map((t, i) => (i === index ? { ...t, ...change(t) } : t)));

  async function send(event) {
    event.preventDefault();
    const form = event.target;
    const input = form.elements.message.value;
    let parsed;
    try {
      parsed = parseTweaks(tweaks);
      setTweaksError(null);
    } catch (err) {
      setTweaksError(err.message);
      return;
    }
    setError(null);
    let run;
    try {
      run = await api(`/v1/flows/${encodeURIComponent(flow)}/runs`, { method: "POST", body: { input, session_id: session, tweaks: parsed } });
    } catch (err) {
      setError(err);
      return;
    }
    form.elements.message.value = "";
    const index = turns.length;
    setTurns((all) => [...all, { input, runId: run.id, text: "", tools: [], tokens: 0, status: run.status, done: false }]);
    setBusy(run.id);
    try {
      for await (const e of sse(`/v1/runs/${run.id}/events`)) {
        if (e.event === "token") update(index, (t) => ({ text: t.text + e.data.text, tokens: t.tokens + 1 }));
        else if (e.event === "tool_call") update(index, (t) => ({ tools: [...t.tools, { id: e.data.id, name: e.data.name, args: e.data.args }] }));
        else if (e.event === "tool_result")
          update(index, (t) => ({ tools: t.tools.map((c) => (c.id === e.data.id ? { ...c, status: e.data.status, result: e.data.result } : c)) }));
        else if (e.event === "status") update(index, () => ({ status: e.data.status }));
        else if (e.event === "output") update(index, (t) => ({ text: t.text || e.data?.text || "" }));
        else if (e.event === "error") update(index, () => ({ error: e.data }));
        else if (e.event === "done") {
          update(index, () => ({ status: e.data.status, done: true }));
          break;
        }
      }
    } catch (err) {
      setError(err);
    } finally {
      update(index, () => ({ done: true }));
      setBusy(null);
    }
  }

  async function stop() {
    try {
      await api(`/v1/runs/${busy}/cancel`, { method: "POST" });
    } catch (err) {
      setError(err);
    }
  }

  return html`<h1>Playground</h1>
    <div class="row">
      <label>Flow <select value=${flow} onChange=${(e) => setFlow(e.target.value)}>
        ${(flows?.items || []).map((f) => html`<option value=${f.id}>${f.id}</option>`)}</select></label>
      <label>Session <input value=${session} onInput=${(e) => setSession(e.target.value)} size="28" /></label>
      <button class="secondary" onClick=${() => (setSession(newSession()), setTurns([]))}>New session</button>
    </div>
    <div class="grid2">
      <section class="card">
        <div class="chat" role="log" aria-label="Conversation" ref=${chat}>
          ${turns.length === 0 && html`<p class="muted">Earlier messages of the session are the flow's chat history.</p>`}
          ${turns.map((t) => html`<${Turn} turn=${t} />`)}
        </div>
        <form onSubmit=${send} class="row" aria-label="Send a message">
          <label style="flex:1">Message <input name="message" required autocomplete="off" /></label>
          <button type="submit" disabled=${Boolean(busy) || !flow}>Send</button>
          ${busy && html`<button type="button" class="danger" onClick=${stop}>Stop</button>`}
        </form>
        <${Problem} error=${error} />
      </section>
      <section class="card">
        <label>Tweaks (JSON) <textarea rows="10" value=${tweaks} onInput=${(e) => setTweaks(e.target.value)}
          placeholder='{"Prompt-abc12": {"template": "Answer like a pirate."}}' spellcheck="false" class="mono"></textarea></label>
        ${tweaksError && html`<div class="problem" role="alert">Tweaks: ${tweaksError}</div>`}
        <p class="muted">Per-component field overrides, sent with each message (LangFlow's <code>tweaks</code>).</p>
      </section>
    </div>`;
}

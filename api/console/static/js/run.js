// One run: status, input, output, error, usage, attempts, its timeline, cancel and retry.
import { api, optional } from "./api.js";
import { html, useEffect, useState, useLoad, Problem, Status, Json, TERMINAL, fmtTime, duration } from "./ui.js";

const ms = (t) => (typeof t === "number" ? (t < 1e12 ? t * 1000 : t) : Date.parse(t));

// GET /v1/runs/{id}/timeline: [{at, kind, title, detail, attempt}] in time order.
export function fromTimeline(data) {
  return data.items.map((e) => ({
    at: ms(e.at),
    kind: e.kind,
    label: e.attempt && e.kind !== "attempt" ? `${e.title} (attempt ${e.attempt})` : e.title,
    detail: e.detail && Object.keys(e.detail).length ? e.detail : null,
  }));
}

// Without the timeline endpoint: the run's own times and its agent steps.
export function fromRunAndSteps(run, steps) {
  const entries = [{ at: ms(run.created_at), kind: "queued", label: run.flow_id, detail: null }];
  if (run.started_at) entries.push({ at: ms(run.started_at), kind: "started", label: `attempt ${run.attempts}`, detail: null });
  for (const s of steps?.items || []) {
    const detail = s.event === "tool_call" ? { args: s.args } : { status: s.status, result: s.result };
    entries.push({ at: ms(s.created_at), kind: s.event, label: s.name, detail: { id: s.id, attempt: s.attempt, ...detail } });
  }
  if (run.finished_at) entries.push({ at: ms(run.finished_at), kind: run.status, label: run.error?.code || "", detail: run.error });
  return entries.sort((a, b) => a.at - b.at);
}

// One entry; its detail (a tool's args, the messages sent to a model) is built only when
// opened, so a long timeline renders only what is on screen.
function Entry({ entry, start }) {
  const [open, setOpen] = useState(false);
  return html`<li>
    <span class="mono muted">+${Math.round(entry.at - start)} ms</span>
    <span class=${`kind kind-${entry.kind}`}>${entry.kind}</span>
    <span>${entry.label}
      ${entry.detail && html` <button class="link" aria-expanded=${open} onClick=${() => setOpen(!open)}>details</button>`}
      ${open && html`<pre>${JSON.stringify(entry.detail, null, 2)}</pre>`}</span>
  </li>`;
}

export function Timeline({ entries }) {
  const start = entries.length ? entries[0].at : 0;
  return html`<ol class="timeline" aria-label="Timeline">
    ${entries.map((e) => html`<${Entry} entry=${e} start=${start} />`)}
  </ol>`;
}

async function loadRun(id) {
  const path = `/v1/runs/${encodeURIComponent(id)}`;
  const run = await api(path);
  const timeline = await optional(`${path}/timeline`);
  const entries = timeline ? fromTimeline(timeline) : fromRunAndSteps(run, await api(`${path}/steps`));
  return { run, entries, source: timeline ? "timeline" : "steps", truncated: Boolean(timeline?.truncated) };
}

export function RunPage({ id }) {
  const [data, error, reload] = useLoad(() => loadRun(id), [id]);
  const [actionError, setActionError] = useState(null);
  const run = data?.run;
  useEffect(() => {
    if (!run || TERMINAL.has(run.status)) return undefined;
    const timer = setTimeout(reload, 1000); // follow an unfinished run
    return () => clearTimeout(timer);
  }, [data]);

  async function act(what) {
    setActionError(null);
    try {
      const answer = await api(`/v1/runs/${encodeURIComponent(id)}/${what}`, { method: "POST" });
      if (what === "retry") location.hash = `#/runs/${answer.id}`;
      else reload();
    } catch (err) {
      setActionError(err);
    }
  }

  if (error) return html`<h1>Run ${id}</h1><${Problem} error=${error} />`;
  if (!run) return html`<p class="muted">Loading…</p>`;
  return html`<h1>Run <span class="mono">${run.id}</span> <${Status} status=${run.status} /></h1>
    <p>Flow <a href=${`#/flows/${encodeURIComponent(run.flow_id)}`}>${run.flow_id}</a> (version <code>${run.flow_version}</code>)
      ${run.session_id && html` · session <a href=${`#/runs?session_id=${encodeURIComponent(run.session_id)}`}>${run.session_id}</a>`}
      · created ${fmtTime(run.created_at)} · took ${duration(run.started_at || run.created_at, run.finished_at) || "…"}
      · attempts <strong aria-label="Attempts">${run.attempts}</strong>${run.cached ? " · cached" : ""}</p>
    <div class="row">
      ${!TERMINAL.has(run.status) && html`<button class="danger" onClick=${() => act("cancel")}>Cancel run</button>`}
      ${TERMINAL.has(run.status) && html`<button onClick=${() => act("retry")}>Retry run</button>`}
    </div>
    <${Problem} error=${actionError} />
    <div class="grid2">
      <section class="card"><h2>Input</h2><pre aria-label="Input">${run.input ?? ""}</pre>
        ${Object.keys(run.tweaks).length > 0 && html`<h2>Tweaks</h2><${Json} value=${run.tweaks} label="Tweaks" />`}</section>
      <section class="card"><h2>Output</h2>
        ${run.output ? html`<pre aria-label="Output">${run.output.text ?? JSON.stringify(run.output, null, 2)}</pre>` : html`<p class="muted">none</p>`}
        ${run.error && html`<h2>Error</h2><div class="problem" aria-label="Error"><code>${run.error.code}</code> ${run.error.message}</div>`}
        <h2>Usage</h2><${Json} value=${run.usage} label="Usage" /></section>
    </div>
    <section class="card"><h2>Timeline</h2>
      ${data.source === "steps" && html`<p class="muted">From the run and its agent steps (this server has no timeline endpoint).</p>`}
      ${data.truncated && html`<p class="notice">This run has more steps than the timeline shows: its first ones are listed.</p>`}
      <${Timeline} entries=${data.entries} /></section>`;
}

// Fleet: the last hour from GET /v1/fleet (queue depth, runs/s, p50/p99 latency, error
// rate) as uPlot charts, the workers, and the dead letters with a retry button each.
import { api, optional } from "./api.js";
import { html, useEffect, useRef, useState, useLoad, Problem, fmtTime } from "./ui.js";

const seconds = (t) => (typeof t === "number" ? (t > 1e12 ? t / 1000 : t) : Date.parse(t) / 1000);
const COLORS = ["#2457c5", "#b42318", "#1d7a3a"];

function Chart({ title, series, fields, labels }) {
  const box = useRef(null);
  useEffect(() => {
    if (!window.uPlot || !box.current) return undefined;
    const data = [series.map((p) => seconds(p.t)), ...fields.map((f) => series.map((p) => p[f] ?? null))];
    const plot = new window.uPlot(
      {
        width: Math.max(320, box.current.clientWidth - 10),
        height: 180,
        series: [{}, ...fields.map((f, i) => ({ label: labels[i], stroke: COLORS[i], width: 2 }))],
        axes: [{}, { size: 60 }],
      },
      data,
      box.current,
    );
    return () => plot.destroy();
  }, [series]);
  return html`<section class="card"><h2>${title}</h2><div ref=${box} role="img" aria-label=${`${title} chart`}></div></section>`;
}

function DeadLetters() {
  const [data, error, reload] = useLoad(() => api("/v1/runs?status=failed&error_code=exhausted_retries&limit=50"), []);
  const [retried, setRetried] = useState({});
  const [actionError, setActionError] = useState(null);
  async function retry(id) {
    setActionError(null);
    try {
      const run = await api(`/v1/runs/${id}/retry`, { method: "POST" });
      setRetried((r) => ({ ...r, [id]: run.id }));
    } catch (err) {
      setActionError(err);
    }
  }
  return html`<section class="card"><h2>Dead letters</h2>
    <p class="muted">Runs started too many times without finishing (<code>exhausted_retries</code>).
      <button class="secondary" onClick=${reload}>Refresh</button></p>
    <${Problem} error=${error || actionError} />
    ${data && !data.items.length && html`<p>None.</p>`}
    ${data?.items.length > 0 &&
    html`<table aria-label="Dead letters"><thead><tr><th>Run</th><th>Flow</th><th>Attempts</th><th>Failed</th><th></th></tr></thead>
      <tbody>${data.items.map(
        (r) => html`<tr><td class="mono"><a href=${`#/runs/${r.id}`}>${r.id}</a></td><td>${r.flow_id}</td>
          <td class="num">${r.attempts}</td><td>${fmtTime(r.finished_at)}</td>
          <td>${retried[r.id]
            ? html`retried as <a href=${`#/runs/${retried[r.id]}`}>${retried[r.id]}</a>`
            : html`<button onClick=${() => retry(r.id)} aria-label=${`Retry ${r.id}`}>Retry</button>`}</td></tr>`,
      )}</tbody></table>`}
  </section>`;
}

export function FleetPage() {
  const [fleet, error, reload] = useLoad(() => optional("/v1/fleet?minutes=60"), []);
  useEffect(() => {
    const timer = setInterval(reload, 10000);
    return () => clearInterval(timer);
  }, []);
  const series = fleet?.series || [];
  return html`<h1>Fleet</h1>
    <${Problem} error=${error} />
    ${fleet === null && html`<p class="notice">This server has no <code>/v1/fleet</code> yet: charts are unavailable.</p>`}
    ${fleet &&
    html`<p>Now: queue depth <strong aria-label="Queue depth">${fleet.queue_depth}</strong> ·
        runs queued ${fleet.queued_runs ?? "?"}, running ${fleet.running_runs ?? "?"} ·
        workers alive <strong aria-label="Workers alive">${fleet.workers.filter((w) => w.alive).length}</strong> of ${fleet.workers.length} ·
        dead letters <strong>${fleet.dead_letters}</strong> <span class="muted">(${fmtTime(fleet.now)})</span></p>
      <div class="grid2">
        <${Chart} title="Queue depth" series=${series} fields=${["queue_depth"]} labels=${["queued"]} />
        <${Chart} title="Runs per second" series=${series} fields=${["runs_per_s"]} labels=${["runs/s"]} />
        <${Chart} title="Latency (ms)" series=${series} fields=${["p50_ms", "p99_ms"]} labels=${["p50", "p99"]} />
        <${Chart} title="Error rate" series=${series} fields=${["error_rate"]} labels=${["failed / finished"]} />
      </div>
      <section class="card"><h2>Workers</h2>
        <table aria-label="Workers"><thead><tr><th>Worker</th><th>Last seen</th><th>Alive</th></tr></thead>
          <tbody>${fleet.workers.map((w) => html`<tr><td class="mono">${w.id}</td><td>${fmtTime(w.last_seen)}</td><td>${w.alive ? "yes" : "no"}</td></tr>`)}</tbody></table>
      </section>`}
    <${DeadLetters} />`;
}

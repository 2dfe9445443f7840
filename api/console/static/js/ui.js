// Small shared pieces: the html tag, problem display, status badges, times, JSON.
import { html, render, useState, useEffect, useRef, useMemo } from "../vendor/htm-preact-standalone.module.js";

export { html, render, useState, useEffect, useRef, useMemo };

// An API problem: its detail and code, and per-node problems of a refused flow export.
export function Problem({ error, title }) {
  if (!error) return null;
  const problem = error.problem || { detail: String(error.message || error) };
  const nodes = Array.isArray(problem.problems) ? problem.problems : [];
  return html`<div class="problem" role="alert">
    <strong>${title || problem.title || "Error"}</strong>
    ${problem.code && html` <code>${problem.code}</code>`}
    <div>${problem.detail || error.message}</div>
    ${nodes.length > 0 &&
    html`<ul aria-label="Problems per node">
      ${nodes.map(
        (p) => html`<li>
          ${p.node_id ? html`<strong>${p.node_id}</strong>` : html`<strong>the flow</strong>`}
          ${p.node_type && html` (${p.node_type})`}${p.field && html`, field <code>${p.field}</code>`}:
          ${" "}${p.message}
        </li>`,
      )}
    </ul>`}
  </div>`;
}

export const Status = ({ status }) => html`<span class=${`status status-${status}`}>${status}</span>`;

export const TERMINAL = new Set(["succeeded", "failed", "cancelled"]);

export function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { hour12: false });
}

export function duration(fromIso, toIso) {
  if (!fromIso || !toIso) return "";
  const ms = new Date(toIso) - new Date(fromIso);
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(2)} s`;
}

export const Json = ({ value, label }) =>
  value === null || value === undefined
    ? html`<p class="muted">none</p>`
    : html`<pre aria-label=${label}>${JSON.stringify(value, null, 2)}</pre>`;

// Load data for a page: [data, error, reload]; reload() refetches.
export function useLoad(load, deps) {
  const [state, setState] = useState({ data: undefined, error: null });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    load().then(
      (data) => live && setState({ data, error: null }),
      (error) => live && setState({ data: null, error }),
    );
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  return [state.data, state.error, () => setTick((t) => t + 1)];
}

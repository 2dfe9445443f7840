// A LangFlow export drawn as SVG from its own node positions and edges, each node labelled
// with its component type. Notes (noteNode) are left out: they are not part of the flow.
import { html } from "./ui.js";

const W = 200;
const H = 56;

// Accepts an export ({data: {nodes, edges}}) or the API's graph view of one ({nodes, edges},
// each node with its component `type` and React Flow's `node_type`).
export function nodesAndEdges(source) {
  const data = source?.data || source || {};
  const nodes = (data.nodes || [])
    .filter((n) => (n.node_type ?? n.type) !== "noteNode" && n.position)
    .map((n) => ({
      id: n.id,
      type: "node_type" in n ? n.type : n.data?.type || n.type,
      x: n.position.x,
      y: n.position.y,
    }));
  const ids = new Set(nodes.map((n) => n.id));
  const edges = (data.edges || []).filter((e) => ids.has(e.source) && ids.has(e.target));
  return { nodes, edges };
}

export function FlowGraph({ exported }) {
  const { nodes, edges } = nodesAndEdges(exported);
  if (!nodes.length) return html`<p class="muted">This export has no nodes to draw.</p>`;
  const xs = nodes.map((n) => n.x);
  const ys = nodes.map((n) => n.y);
  const pad = 20;
  const box = [Math.min(...xs) - pad, Math.min(...ys) - pad, Math.max(...xs) - Math.min(...xs) + W + 2 * pad, Math.max(...ys) - Math.min(...ys) + H + 2 * pad];
  const at = Object.fromEntries(nodes.map((n) => [n.id, n]));
  return html`<svg class="graph" role="img" aria-label="Flow graph" viewBox=${box.join(" ")} preserveAspectRatio="xMidYMid meet">
    <defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="8" markerHeight="8" orient="auto-start-reverse">
      <path d="M 0 0 L 10 5 L 0 10 z" fill="#8a94a3" /></marker></defs>
    ${edges.map((e) => {
      const a = at[e.source];
      const b = at[e.target];
      const [x1, y1, x2, y2] = [a.x + W, a.y + H / 2, b.x, b.y + H / 2];
      const mid = (x1 + x2) / 2;
      return html`<path d=${`M ${x1} ${y1} C ${mid} ${y1}, ${mid} ${y2}, ${x2} ${y2}`} marker-end="url(#arrow)" />`;
    })}
    ${nodes.map(
      (n) => html`<g data-node=${n.id} aria-label=${`${n.type} node ${n.id}`} role="group">
        <rect x=${n.x} y=${n.y} width=${W} height=${H} rx="6" />
        <text x=${n.x + 10} y=${n.y + 22} font-weight="600">${n.type}</text>
        <text x=${n.x + 10} y=${n.y + 42} class="muted">${n.id}</text>
      </g>`,
    )}
  </svg>`;
}

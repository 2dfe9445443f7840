// Browser scenarios for the console, one per run: node console.mjs '<json args>'.
// Args: {base, key, scenario, chromium, shots (folder for screenshots), ...scenario's own}.
// Prints one JSON object (what the scenario saw) for tests/console/test_console.py to check.
import { chromium } from "playwright-core";

const args = JSON.parse(process.argv[2]);
const T = 30_000; // per step: generous, the machine is shared

async function signIn(page) {
  await page.goto(`${args.base}/console/`);
  await page.getByLabel("API key").fill(args.key);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("navigation", { name: "Main" }).waitFor({ timeout: T });
}

const shot = (page, name) => args.shots && page.screenshot({ path: `${args.shots}/${name}.png`, fullPage: true });

const scenarios = {
  // Upload a broken export (per-node problems shown), then a starter; draw its graph.
  async upload(page) {
    await signIn(page);
    const form = page.getByRole("form", { name: "Upload a flow" });
    await form.getByLabel("Export file (.json)").setInputFiles(args.bad_export);
    await form.getByLabel("Flow id").fill(args.flow_id);
    await form.getByRole("button", { name: "Upload" }).click();
    const problems = form.getByRole("list", { name: "Problems per node" });
    await problems.waitFor({ timeout: T });
    const refused = await problems.getByRole("listitem").allInnerTexts();
    const alert = await form.getByRole("alert").innerText();
    await shot(page, "flows-upload-refused");

    await form.getByLabel("Export file (.json)").setInputFiles(args.export);
    await form.getByLabel("Flow id").fill(args.flow_id);
    await form.getByRole("button", { name: "Upload" }).click();
    await form.getByRole("status").waitFor({ timeout: T });
    const link = page.getByRole("table", { name: "Flows" }).getByRole("link", { name: args.flow_id, exact: true });
    await link.waitFor({ timeout: T }); // the list reloads after the upload
    const listed = await link.count();
    await shot(page, "flows");
    await page.getByRole("table", { name: "Flows" }).getByRole("link", { name: args.flow_id, exact: true }).click();
    const graph = page.getByRole("img", { name: "Flow graph" });
    await graph.waitFor({ timeout: T });
    await page.getByRole("table", { name: "Versions" }).waitFor({ timeout: T });
    const nodes = await graph.getByRole("group").evaluateAll((gs) => gs.map((g) => g.getAttribute("aria-label")));
    const edges = await graph.locator("path[marker-end]").count();
    const versions = await page.getByRole("table", { name: "Versions" }).getByRole("row").count();
    await shot(page, "flow");
    return { refused, alert, listed, nodes, edges, versions: versions - 1 };
  },

  // Chat in a session: the answer grows while tokens arrive, then the run is done.
  async chat(page) {
    await signIn(page);
    await page.goto(`${args.base}/console/#/playground/${args.flow_id}`);
    await page.getByLabel("Session").fill(args.session_id);
    await page.getByLabel("Tweaks (JSON)").fill(JSON.stringify(args.tweaks));
    await page.getByRole("textbox", { name: "Message" }).fill(args.message);
    // Record every text the answer shows while it streams (growing partial answers prove
    // the tokens arrived one by one), from a MutationObserver set up before sending.
    await page.evaluate(() => {
      window.__answers = [];
      const log = document.querySelector('[aria-label="Conversation"]');
      new MutationObserver(() => {
        const all = log.querySelectorAll('[data-testid="answer"]');
        const text = all.length ? all[all.length - 1].textContent : "";
        if (text && window.__answers[window.__answers.length - 1] !== text) window.__answers.push(text);
      }).observe(log, { subtree: true, childList: true, characterData: true });
    });
    await page.getByRole("button", { name: "Send" }).click();
    const turn = page.getByRole("log", { name: "Conversation" }).getByLabel("Flow answered").last();
    await turn.and(page.locator('[aria-busy="false"]')).waitFor({ timeout: T });
    const seen = await page.evaluate(() => window.__answers);
    const answer = page.getByRole("log", { name: "Conversation" }).getByTestId("answer").last();
    const final = await answer.innerText();
    const runLink = page.getByRole("log", { name: "Conversation" }).getByRole("link", { name: /^run / }).last();
    const runId = (await runLink.innerText()).replace(/^run /, "");
    await shot(page, "playground");
    return { seen, final, runId };
  },

  // A run's page and its timeline; the runs list filtered to the flow.
  async timeline(page) {
    await signIn(page);
    await page.goto(`${args.base}/console/#/runs?flow_id=${args.flow_id}`);
    const table = page.getByRole("table", { name: "Runs" });
    await table.getByRole("link", { name: args.run_id }).waitFor({ timeout: T });
    const rows = (await table.getByRole("row").count()) - 1;
    await shot(page, "runs");
    await table.getByRole("link", { name: args.run_id }).click();
    const timeline = page.getByRole("list", { name: "Timeline" });
    await timeline.waitFor({ timeout: T });
    const kinds = await timeline.locator(".kind").allInnerTexts();
    const output = await page.getByLabel("Output").innerText();
    const input = await page.getByLabel("Input").innerText();
    await shot(page, "run");
    return { rows, kinds, output, input };
  },

  // Open a running (slow) run and cancel it from its page.
  async cancel(page) {
    await signIn(page);
    await page.goto(`${args.base}/console/#/runs/${args.run_id}`);
    await page.getByRole("button", { name: "Cancel run" }).click({ timeout: T });
    await page.locator("h1 .status-cancelled").waitFor({ timeout: T });
    const retry = await page.getByRole("button", { name: "Retry run" }).count();
    return { status: await page.locator("h1 .status").innerText(), retry };
  },

  // Fleet: the dead letter is listed; its Retry submits it again.
  async deadletter(page) {
    await signIn(page);
    await page.goto(`${args.base}/console/#/fleet`);
    const table = page.getByRole("table", { name: "Dead letters" });
    await table.getByRole("link", { name: args.run_id }).waitFor({ timeout: T });
    await page.getByRole("img", { name: "Error rate chart" }).locator("canvas").waitFor({ timeout: T });
    const charts = await page.locator("[role=img] canvas").count();
    const alive = Number(await page.getByLabel("Workers alive").innerText());
    await shot(page, "fleet");
    await table.getByRole("button", { name: `Retry ${args.run_id}` }).click();
    const retried = table.getByRole("link").filter({ hasNotText: args.run_id });
    await retried.first().waitFor({ timeout: T });
    return { retried_as: await retried.first().innerText(), charts, alive };
  },

  // Keys (admin): create one (shown once), then revoke it.
  async keys(page) {
    await signIn(page);
    await page.getByRole("link", { name: "Keys" }).click();
    const form = page.getByRole("form", { name: "Create a key" });
    await form.getByLabel("Name").fill(args.name);
    await form.getByRole("button", { name: "Create key" }).click();
    const key = await form.getByLabel("New key").innerText({ timeout: T });
    const table = page.getByRole("table", { name: "Keys" });
    await table.getByRole("cell", { name: args.name, exact: true }).waitFor({ timeout: T });
    await shot(page, "keys");
    await table.getByRole("button", { name: `Revoke ${args.name}` }).click();
    await table.getByRole("button", { name: `Revoke ${args.name}` }).waitFor({ state: "detached", timeout: T });
    return { key };
  },

  // A key without admin: no Keys page offered.
  async nonadmin(page) {
    await signIn(page);
    await page.getByRole("link", { name: "Runs" }).waitFor({ timeout: T });
    await page.waitForTimeout(500);
    return { keys_link: await page.getByRole("link", { name: "Keys" }).count() };
  },

  // Render timings of seeded data, measured in the page with performance.now(): a 200-run
  // page of the runs table and a 2,000-event timeline, each rendered into a fresh element
  // and laid out (Preact's render() is synchronous; offsetHeight forces the layout).
  async bench(page) {
    await signIn(page);
    return await page.evaluate(async (repeat) => {
      const { html, render } = await import("/console/js/ui.js");
      const { RunsTable } = await import("/console/js/runs.js");
      const { Timeline } = await import("/console/js/run.js");
      const t0 = Date.parse("2026-01-01T00:00:00Z");
      const iso = (ms) => new Date(t0 + ms).toISOString();
      const runs = Array.from({ length: 200 }, (_, i) => ({
        id: `run${String(i).padStart(20, "0")}`, flow_id: "basic-prompting", session_id: `s-${i % 17}`,
        status: ["succeeded", "failed", "running", "cancelled"][i % 4], error: i % 4 === 1 ? { code: "backend_error", message: "x" } : null,
        created_at: iso(i * 1000), started_at: iso(i * 1000 + 20), finished_at: iso(i * 1000 + 900), attempts: 1,
      }));
      const kinds = ["token", "token", "token", "tool_call", "tool_result", "model_call"];
      const entries = Array.from({ length: 2000 }, (_, i) => ({
        at: t0 + i * 5, kind: kinds[i % kinds.length], label: `step ${i}`, detail: i % 6 === 5 ? { messages: [{ role: "user", content: "hi" }] } : null,
      }));
      const time = (vnode) => {
        const box = document.createElement("div");
        document.body.appendChild(box);
        const start = performance.now();
        render(vnode, box);
        void box.offsetHeight;
        const took = performance.now() - start;
        box.remove();
        return took;
      };
      const out = { runs_200_ms: [], timeline_2000_ms: [] };
      for (let i = 0; i < repeat; i++) {
        out.runs_200_ms.push(time(html`<${RunsTable} runs=${runs} />`));
        out.timeline_2000_ms.push(time(html`<${Timeline} entries=${entries} />`));
      }
      return out;
    }, args.repeat || 5);
  },
};

const browser = await chromium.launch({ executablePath: args.chromium, args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"] });
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 860 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  const result = await scenarios[args.scenario](page);
  console.log(JSON.stringify({ ...result, page_errors: errors }));
} finally {
  await browser.close();
}

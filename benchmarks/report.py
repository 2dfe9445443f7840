"""The benchmark's outputs: a markdown table, the targets, and a chart."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _rows(results: dict[str, Any], name: str) -> dict[int, dict[str, Any]]:
    design = results.get("compare", {}).get("designs", {}).get(name, {})
    return {row["concurrency"]: row for row in design.get("rows", [])}


def _ratio(a: float | None, b: float | None) -> str:
    return f"{a / b:.2f}×" if a and b else "n/a"


def targets(results: dict[str, Any]) -> list[tuple[str, str, bool | None]]:
    """(target, measured, met) for every target of issue 5 the results can speak to."""
    ff, direct, naive = (_rows(results, n) for n in ("flowfleet", "direct", "naive"))
    stock = _rows(results, "direct-stock")
    out: list[tuple[str, str, bool | None]] = []

    def rate(rows: dict[int, dict[str, Any]], c: int) -> float | None:
        return rows[c]["runs_per_s"] if c in rows else None

    f64, d64, n64 = rate(ff, 64), rate(direct, 64), rate(naive, 64)
    if f64 and d64:
        out.append(("64 clients: flowfleet ≥ 0.5× direct", _ratio(f64, d64), f64 >= 0.5 * d64))
    if f64 and n64:
        out.append(("64 clients: flowfleet ≥ 15× naive", _ratio(f64, n64), f64 >= 15 * n64))
    for c in (256, 512):
        fc, dc = rate(ff, c), rate(direct, c)
        if fc and f64:
            out.append(
                (f"{c} clients: no collapse (≥ 0.9× own at 64)", _ratio(fc, f64), fc >= 0.9 * f64)
            )
        if fc and dc:
            out.append((f"{c} clients: beats direct", _ratio(fc, dc), fc > dc))
        if fc and (sc := rate(stock, c)):
            out.append((f"{c} clients: beats direct-stock", _ratio(fc, sc), fc > sc))
    if 16 in ff:
        row = ff[16]
        for key, limit in (("p50", 15), ("p99", 60)):
            client = row[f"overhead_{key}_ms"]
            server = row[f"server_overhead_{key}_ms"]
            shown = f"{client} ms (service alone: {server} ms)"
            out.append(
                (
                    f"16 clients: overhead {key} ≤ {limit} ms",
                    shown,
                    client is not None and client <= limit,
                )
            )
    if "inflight" in results:
        r = results["inflight"]
        out.append(
            (
                "one worker ≥ 500 runs in flight",
                str(r["peak_in_flight"]),
                r["peak_in_flight"] >= 500,
            )
        )
        out.append(
            (
                "… with peak RSS ≤ 400 MB",
                f"{r['worker_peak_rss_mb']} MB",
                r["worker_peak_rss_mb"] <= 400,
            )
        )
    if "submit" in results:
        s = results["submit"]
        out.append(
            (
                "submit alone ≥ 800 runs/s (one API, PostgreSQL)",
                f"{s['accepted_per_s']}/s",
                s["accepted_per_s"] >= 800,
            )
        )
    return out


def markdown(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"Machine: {m['nproc']} cores, {m['cpu']}, {m['memory_gb']} GB, Python {m['python']}; "
        f"load average before {m['load_avg']}, after {m.get('load_avg_after')}. "
        f"A Redis PING took {m['round_trip']['busy_us']} µs back to back and "
        f"{m['round_trip']['idle_us']} µs after 50 ms idle (an idle CPU wakes slowly).",
        "",
    ]
    compare = results.get("compare")
    if compare:
        lines += [
            f"Closed loop, {compare['duration_s']:g} s per level, llm-sim {compare['llm_s']:.2f} s "
            "per call (200 ms to first token, 40 tokens at 20 ms).",
            "",
        ]
        lines += _design_table(compare["designs"])
        ff = _rows(results, "flowfleet")
        lines += [
            "",
            "| clients | flowfleet/direct | flowfleet/direct-stock | flowfleet/naive "
            "| flowfleet/lfx |",
            "|---|---|---|---|---|",
        ]
        for c in compare["levels"]:
            f = ff.get(c, {}).get("runs_per_s")
            cells = [
                _ratio(f, _rows(results, n).get(c, {}).get("runs_per_s"))
                for n in ("direct", "direct-stock", "naive", "lfx")
            ]
            lines.append(f"| {c} | " + " | ".join(cells) + " |")
        lines += _stages(ff)
    if "agent" in results:
        lines += _agent(results["agent"])
    if "rag" in results:
        lines += _rag(results["rag"])
    if "submit" in results:
        s = results["submit"]
        lines += [
            "",
            f"Submit alone ({s['concurrency']} clients, {s['duration_s']:g} s, no worker): "
            f"{s['accepted_per_s']} accepted runs/s, p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms, "
            f"errors {s['errors']}, API CPU {s['api_cpu_s']} s.",
        ]
    if "inflight" in results:
        r = results["inflight"]
        lines += [
            "",
            f"Runs in flight in one worker ({r['runs']} runs, "
            f"llm-sim {r['llm_call_s']:g} s per call): "
            f"peak {r['peak_in_flight']} in flight, {r['succeeded']} succeeded in "
            f"{r['all_done_in_s']} s, worker peak RSS {r['worker_peak_rss_mb']} MB, "
            f"worker CPU {r['worker_cpu_s']} s.",
        ]
    checks = targets(results)
    if checks:
        lines += ["", "| target | measured | met |", "|---|---|---|"]
        for name, measured, met in checks:
            lines.append(f"| {name} | {measured} | {'yes' if met else 'NO'} |")
    return "\n".join(lines) + "\n"


def _design_table(designs: dict[str, Any]) -> list[str]:
    """One row per design and level: throughput, latency, errors, CPU and memory."""
    lines = [
        "| design | clients | runs/s | p50 ms | p95 ms | p99 ms | overhead p50/p99 ms | "
        "errors | CPU s (api, worker) | peak RSS MB (api, worker) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, design in designs.items():
        if not design.get("rows"):
            lines.append(f"| {name} | skipped: {design.get('skipped')} |||||||||")
            continue
        for r in design["rows"]:
            cpu = ", ".join(f"{v:g}" for v in r["cpu_s"].values())
            rss = ", ".join(f"{v:g}" for v in r["peak_rss_mb"].values())
            lines.append(
                f"| {name} | {r['concurrency']} | {r['runs_per_s']} | {r['p50_ms']} | "
                f"{r['p95_ms']} | {r['p99_ms']} | {r['overhead_p50_ms']} / "
                f"{r['overhead_p99_ms']} | {r['errors']} | {cpu} | {rss} |"
            )
    return lines


def _agent(agent: dict[str, Any]) -> list[str]:
    """The agent flow: flowfleet against direct, runs/s and latency per level."""
    lines = [
        "",
        f"Agent flow (LangFlow's Agent with the Calculator and current-date tools): "
        f"{agent.get('model_calls')} model calls and {agent.get('tool_calls')} tool calls a "
        f"run, the simulated model {agent['llm_s']:.2f} s over all of them; closed loop, "
        f"{agent['duration_s']:g} s per level.",
        "",
    ]
    lines += _design_table(agent["designs"])
    rows = {
        name: {r["concurrency"]: r["runs_per_s"] for r in d.get("rows", [])}
        for name, d in agent["designs"].items()
    }
    if "flowfleet" in rows and "direct" in rows:
        lines += ["", "| clients | flowfleet/direct (agent) |", "|---|---|"]
        for c in agent["levels"]:
            lines.append(f"| {c} | {_ratio(rows['flowfleet'].get(c), rows['direct'].get(c))} |")
    return lines


def _rag(rag: dict[str, Any]) -> list[str]:
    """The RAG line: ingest, retrieval beside Basic Prompting, the search itself."""
    i, s = rag["ingest"], rag["search"]
    lines = [
        "",
        f"RAG (Vector Store RAG starter, {rag['store']}): ingest of {i['documents']} documents "
        f"({i['bytes'] / 1e6:.1f} MB; uploaded in {i['upload_s']} s) in {i['ingest_s']} s, "
        f"{i['embedding_calls']} embedding calls for {i['embedded_texts']} chunks. Collection "
        f"of {rag['collection_chunks']} chunks ({rag['ingested_chunks']} ingested, the rest "
        f"added straight into Chroma with llm-sim's vectors). Search alone (Chroma query, "
        f"k={s['k']}, {s['queries']} queries): p50 {s['p50_ms']} ms, p99 {s['p99_ms']} ms.",
        "",
        f"llm-sim echoes the prompt: a retrieval run's model call takes {rag['rag_llm_s']} s "
        "(its prompt holds the retrieved chunks), Basic Prompting's the configured one; "
        "overhead is latency less that.",
        "",
        "| flow (flowfleet) | clients | runs/s | p50 ms | p99 ms | overhead p50 ms | errors |",
        "|---|---|---|---|---|---|---|",
    ]
    for name in ("rag", "basic"):
        r = rag[name]
        lines.append(
            f"| {name} | {r['concurrency']} | {r['runs_per_s']} | {r['p50_ms']} | "
            f"{r['p99_ms']} | {r['overhead_p50_ms']} | {r['errors']} |"
        )
    return lines


def _stages(rows: dict[int, dict[str, Any]]) -> list[str]:
    """Where flowfleet's overhead goes, per level: each stage's p50 from the runs' timestamps."""
    levels = [c for c, r in rows.items() if r.get("stage_overhead_p50_ms")]
    if not levels:
        return []
    out = [
        "",
        "Where flowfleet's time goes (p50 ms per stage, from each run's created, started and "
        "finished times; *running* less the simulated model's time):",
        "",
        "| clients | sent → created | created → started | running | finished → answered |",
        "|---|---|---|---|---|",
    ]
    for c in levels:
        st = rows[c]["stage_overhead_p50_ms"]
        cells = [st.get(k) for k in ("in", "queued", "running", "out")]
        out.append(f"| {c} | " + " | ".join(str(v) for v in cells) + " |")
    return out


def chart(results: dict[str, Any], path: Path) -> None:
    """Throughput and p99 latency against concurrency, one line per design."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, design in results["compare"]["designs"].items():
        rows = design.get("rows")
        if not rows:
            continue
        xs = [r["concurrency"] for r in rows]
        left.plot(xs, [r["runs_per_s"] for r in rows], marker="o", label=name)
        right.plot(xs, [(r["p99_ms"] or 0) / 1000 for r in rows], marker="o", label=name)
    for ax, title in ((left, "completed runs/s"), (right, "p99 end-to-end latency (s)")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent clients")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    m = results["machine"]
    fig.suptitle(f"flowfleet vs baselines, llm-sim 1 s per call, {m['nproc']} cores")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)

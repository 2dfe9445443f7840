"""The `flowfleet` command: every process of the service starts from here."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

app = typer.Typer(help="Run LangFlow flows in production.", no_args_is_help=True)
flows_app = typer.Typer(help="Work with flow definitions.", no_args_is_help=True)
app.add_typer(flows_app, name="flows")
keys_app = typer.Typer(help="Manage API keys.", no_args_is_help=True)
app.add_typer(keys_app, name="keys")


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Bind address")] = None,
    port: Annotated[int | None, typer.Option(help="Port")] = None,
) -> None:
    """Serve the HTTP API (uvicorn)."""
    import uvicorn

    from shared.settings import get_settings

    settings = get_settings()
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=host or settings.api_host,
        port=port or settings.api_port,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
    )


@app.command()
def worker(
    concurrency: Annotated[int | None, typer.Option(help="Runs in flight per process")] = None,
    processes: Annotated[
        int,
        typer.Option(help="Worker processes, supervised (0: FLOWFLEET_WORKER_PROCESSES, per core)"),
    ] = 1,
) -> None:
    """Run a Celery worker that executes runs (``--processes N``: N of them, supervised)."""
    from shared.settings import get_settings

    settings = get_settings()
    if processes != 1:
        from flowfleet.up import run_workers, worker_processes

        count = worker_processes(processes or None, settings)
        if count > 1:
            raise typer.Exit(run_workers(count, concurrency))

    from worker.celery_app import create_worker_app

    celery_app = create_worker_app(settings).celery

    argv = [
        "worker",
        "--loglevel=WARNING",
        "--pool=threads",
        f"--concurrency={concurrency or settings.worker_concurrency}",
        f"--queues={settings.queue_name}",
        "--without-gossip",
        "--without-mingle",
    ]
    celery_app.worker_main(argv)


@app.command()
def migrate() -> None:
    """Bring the database schema up to date (Alembic)."""
    from shared.migrate import upgrade

    upgrade()
    typer.echo("database is up to date")


@app.command("llm-sim")
def llm_sim(
    host: str = "127.0.0.1",
    port: int = 8001,
    ttft: Annotated[float, typer.Option(help="Seconds to the first token")] = 0.2,
    token_time: Annotated[float, typer.Option(help="Seconds between tokens")] = 0.02,
    tokens: Annotated[int, typer.Option(help="Pad replies to at least this many tokens")] = 40,
    error_rate: Annotated[float, typer.Option(help="Share of calls answered 429/500")] = 0.0,
    hang_rate: Annotated[float, typer.Option(help="Share of calls that never answer")] = 0.0,
) -> None:
    """Serve the OpenAI-compatible LLM simulator (tests, benchmarks, the embedded default)."""
    from flowfleet.llm_sim import SimConfig, serve

    serve(
        host,
        port,
        SimConfig(
            ttft_s=ttft,
            token_s=token_time,
            tokens=tokens,
            error_rate=error_rate,
            hang_rate=hang_rate,
        ),
    )


@app.command()
def up(
    api_replicas: Annotated[int, typer.Option("--api", help="API processes")] = 1,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            help="Worker processes (default: FLOWFLEET_WORKER_PROCESSES, 0: one per core)",
        ),
    ] = None,
    nginx: Annotated[bool, typer.Option("--nginx", help="Put nginx (from PATH) in front")] = False,
    nginx_port: Annotated[int, typer.Option(help="nginx's port with --nginx")] = 8080,
    api_port: Annotated[
        int | None, typer.Option(help="First API port (0: free ports); default: the setting")
    ] = None,
) -> None:
    """Start the whole service on this machine with embedded defaults; Ctrl-C stops it."""
    from flowfleet.up import run_embedded

    raise typer.Exit(
        run_embedded(
            api_replicas=api_replicas,
            workers=workers,
            nginx=nginx,
            nginx_port=nginx_port,
            api_port=api_port,
        )
    )


@app.command("nginx-conf")
def nginx_conf() -> None:
    """Print the Docker nginx.conf rendered from nginx/nginx.conf.template."""
    from flowfleet.nginx import render_compose
    from shared.settings import get_settings

    typer.echo(render_compose(get_settings()), nl=False)


@flows_app.command("validate")
def flows_validate(paths: list[Path]) -> None:
    """Validate LangFlow exports or Python flows without running them; non-zero on a problem."""
    from flows.base import FlowValidationError
    from flows.definitions import describe, flow_id_from_path, kind_of

    failed = 0
    for path in paths:
        kind = kind_of(path)
        if kind is None:
            typer.echo(f"{path}: not a flow file (.json or .py)")
            failed += 1
            continue
        try:
            defn = describe(flow_id_from_path(path), kind, path.read_text())
        except FlowValidationError as exc:
            failed += 1
            typer.echo(f"{path}: INVALID")
            for p in exc.problems:
                where = "/".join(x for x in (p.node_id, p.node_type, p.field) if x)
                typer.echo(f"  - {where or 'flow'}: {p.message}")
            continue
        typer.echo(f"{path}: ok ({defn.kind}, version {defn.version}, id {defn.id})")
    raise typer.Exit(1 if failed else 0)


def _with_session(work: Any) -> Any:
    """Run ``work(session)`` in one committed transaction on the configured database."""
    import asyncio

    from shared.db import create_engine, session_factory, transaction
    from shared.settings import get_settings

    async def go() -> Any:
        engine = create_engine(get_settings(), pool_size=1)
        try:
            async with transaction(session_factory(engine)) as session:
                return await work(session)
        finally:
            await engine.dispose()

    return asyncio.run(go())


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Option(help="Who or what the key is for")],
    scopes: Annotated[
        str, typer.Option(help="Comma list of runs:write, runs:read, flows:write, admin")
    ] = "runs:write,runs:read",
) -> None:
    """Create a key; it is printed once and only its hash is stored."""
    from shared.keys import create_key, parse_scopes

    try:
        wanted = parse_scopes(scopes)
    except ValueError as exc:
        raise typer.BadParameter(str(exc), param_hint="--scopes") from exc
    new = _with_session(lambda s: create_key(s, name=name, scopes=wanted))
    typer.echo(f"id:     {new.id}\nname:   {new.name}\nscopes: {','.join(new.scopes)}")
    typer.echo(f"key:    {new.key}")
    typer.echo("Store the key now: it cannot be shown again.", err=True)


@keys_app.command("list")
def keys_list() -> None:
    """List keys (never their values)."""
    from shared.keys import list_keys

    for key in _with_session(list_keys):
        state = "revoked" if key.revoked_at else "active"
        typer.echo(f"{key.id}  {state:8}  {','.join(key.scopes):40}  {key.name}")


@keys_app.command("revoke")
def keys_revoke(key_id: str) -> None:
    """Revoke a key; API replicas refuse it within their key cache time."""
    from shared.keys import revoke_key

    if not _with_session(lambda s: revoke_key(s, key_id)):
        typer.echo(f"no key {key_id}", err=True)
        raise typer.Exit(1)
    typer.echo(f"revoked {key_id}")


def main() -> None:
    sys.exit(app())

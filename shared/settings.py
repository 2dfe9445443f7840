"""All configuration, read once from the environment (prefix ``FLOWFLEET_``)."""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.providers import Api, normalise_provider

REPO_ROOT = Path(__file__).resolve().parent.parent
LLM_SIM_DEFAULT_URL = "http://127.0.0.1:8001/v1"
DEFAULT_WEBHOOK_SECRET = "change-me"  # the embedded default; refused in production


class BackendConfig(BaseModel):
    """One LLM server and the API it speaks (OpenAI-compatible, Anthropic Messages, Gemini).

    docs/providers.md: the YAML/env format and which provider maps to which API.
    """

    name: str
    base_url: str
    api: Api = "openai"
    # LangFlow providers this backend serves (normalised: "Google Generative AI" -> google).
    providers: list[str] = Field(default_factory=list)
    api_key_env: str | None = None  # name of the variable holding the key, never the key
    models: list[str] = Field(default_factory=lambda: ["*"])  # fnmatch patterns
    max_concurrency: int | None = None  # fleet-wide limit, None = unlimited
    timeout_s: float = 120.0
    # A base URL a flow named that no operator configured: it never gets a configured key.
    adhoc: bool = False

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @field_validator("providers")
    @classmethod
    def _normalise_providers(cls, value: list[str]) -> list[str]:
        return [normalise_provider(p) for p in value]

    def api_key(self) -> str:
        """The key sent to this backend: its own configured variable's value, nothing else."""
        # OpenAI-compatible servers without auth still need a non-empty key in the client.
        if self.api_key_env and not self.adhoc:
            return os.environ.get(self.api_key_env, "") or "not-set"
        return "not-set"


class Settings(BaseSettings):
    """flowfleet settings; the defaults give the embedded single-machine setup."""

    model_config = SettingsConfigDict(env_prefix="FLOWFLEET_", env_file=".env", extra="ignore")

    env: Literal["embedded", "production"] = "embedded"
    database_url: str = f"sqlite+aiosqlite:///{REPO_ROOT / 'var' / 'flowfleet.db'}"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_namespace: str = "flowfleet:"
    queue_name: str = "flowfleet"
    flows_dir: Path = REPO_ROOT / "examples" / "flows"

    api_host: str = "127.0.0.1"
    api_port: int = 8000
    max_body_bytes: int = 1024 * 1024
    max_input_chars: int = 100_000
    max_tweaks_bytes: int = 64 * 1024  # serialized size of a run's tweaks
    max_metadata_bytes: int = 16 * 1024
    max_flow_bytes: int = 1024 * 1024  # an uploaded LangFlow export (within max_body_bytes)
    # An export's graph after group nodes are inlined (flows/langflow/document.py), its JSON
    # nesting (read before parsing) and the time the API spends validating it off its loop.
    max_flow_nodes: int = 200
    max_flow_edges: int = 1000
    max_flow_depth: int = 64  # LangFlow's starter projects nest 9-18 levels
    flow_validation_timeout_s: float = 5.0
    # A rendered Prompt template, Memory template or Parser pattern, in characters.
    max_rendered_chars: int = 1_000_000
    # Files (POST /v1/files, LangFlow's File component): bytes stored in the database.
    max_file_bytes: int = 10 * 1024 * 1024  # one uploaded file
    max_files_per_owner: int = 1000
    max_owner_file_bytes: int = 1024 * 1024 * 1024  # all of a key's files together
    max_files_per_node: int = 20  # file ids one File node reads in a run
    # Parsing a file in a run (flows/files.py): its time, pages, text and unpacked size.
    file_parse_timeout_s: float = 30.0
    max_file_pages: int = 500  # PDF
    max_file_chars: int = 2_000_000  # the text parsed out of one file
    max_file_unpacked_bytes: int = 50 * 1024 * 1024  # DOCX: the declared sizes of its parts
    log_format: Literal["console", "json"] = "console"
    log_level: str = "INFO"

    # Worker
    worker_concurrency: int = 1000  # Celery threads; each only waits on the loop (throughput.md)
    # Worker processes `flowfleet up` and the compose worker start; 0 = one per core.
    worker_processes: int = Field(default=0, ge=0)
    db_pool_size: int = 20  # per process; see shared/db.py
    run_timeout_s: float = 600.0  # per-run deadline
    # Unacked messages of a dead worker are redelivered after this (leases make it safe).
    visibility_timeout_s: int = 300
    lease_s: float = 30.0  # a running run's lease, renewed by heartbeat
    sweep_interval_s: float = 10.0
    queued_stale_s: float = 600.0  # a queued run older than this is re-enqueued
    compiled_cache_size: int = 64
    # Response cache: flow id -> TTL in seconds, e.g. FLOWFLEET_CACHE_FLOWS='{"prompt": 300}'
    cache_flows: dict[str, float] = Field(default_factory=dict)
    # Token events coalesce tokens arriving within this window; 0 = one event per token (the
    # default: SSE and the OpenAI front door stream token by token). See docs/throughput.md.
    token_flush_s: float = 0.0
    # Each model call of a run (model, backend name, the messages capped, usage, latency) is a
    # run_steps row the console's timeline shows: one insert per call (worker/model_calls.py).
    record_model_calls: bool = True

    # Run events (Redis Streams)
    events_maxlen: int = 2000
    events_ttl_s: int = 3600  # a finished run's events expire this long after its last status
    sse_ping_s: float = 15.0  # comment heartbeat on idle event streams
    wait_max_s: float = 60.0  # cap on ?wait= and /wait?timeout=
    redis_blocking_connections: int = 500  # pool for XREAD BLOCK (SSE, wait), apart from the rest
    cancel_poll_s: float = 1.0  # a running run also polls its cancel flag this often

    # Submit
    max_batch: int = 100
    idempotency_ttl_s: int = 24 * 3600

    # Egress (shared/egress.py): what a flow or a webhook may reach besides public addresses.
    # JSON lists, e.g. FLOWFLEET_EGRESS_ALLOWED_HOSTS='["tools.internal"]',
    # FLOWFLEET_EGRESS_ALLOWED_CIDRS='["10.20.0.0/16"]'. Empty: public unicast addresses only.
    egress_allowed_hosts: list[str] = Field(default_factory=list)  # fnmatch patterns
    egress_allowed_cidrs: list[str] = Field(default_factory=list)
    egress_timeout_s: float = 30.0  # the whole exchange, redirects included
    egress_max_bytes: int = 10 * 1024 * 1024  # a response body
    egress_max_redirects: int = 5

    # Webhooks: hosts a webhook URL may name (fnmatch patterns; empty = any host whose
    # addresses the egress policy admits). Delivery goes through the egress policy either way.
    webhook_allowed_hosts: list[str] = Field(default_factory=list)
    webhook_timeout_s: float = 10.0
    webhook_max_attempts: int = 6
    webhook_retry_base_s: float = 5.0  # attempt n waits base * 2**(n-1)

    # LLM backends
    backends: list[BackendConfig] = Field(default_factory=list)
    backends_file: Path | None = None
    default_backend: str | None = None
    allow_adhoc_backends: bool = False
    # Model connection fields a per-run tweak may change (none by default: a tweak of
    # openai_api_base or timeout would pick where a call goes or trip the shared breaker).
    # Secret fields (api_key) are never tweakable. docs/security.md, "Secrets".
    tweakable_model_fields: list[str] = Field(default_factory=list)
    llm_sim_url: str = LLM_SIM_DEFAULT_URL
    # Web search for agents' search tools (docs/agents.md): a Tavily-style endpoint (POST
    # {query, max_results} -> {results: [{title, url, content}]}); unset: llm-sim's /search.
    search_url: str | None = None
    search_api_key: SecretStr | None = None
    # arXiv for ArXivComponent (docs/agents.md): its Atom query API, reached through the egress
    # policy (tests point it at a local server they allow-list).
    arxiv_url: str = "https://export.arxiv.org/api/query"
    # MCP servers a flow's MCPTools node may name (docs/agents.md): JSON name -> streamable-HTTP
    # URL, e.g. FLOWFLEET_MCP_SERVERS='{"docs": "http://mcp-docs:8000/mcp"}'. The operator's
    # (like a model backend): a flow names a server, never an address; an unknown name is a 422.
    mcp_servers: dict[str, str] = Field(default_factory=dict)
    mcp_timeout_s: float = 30.0  # one MCP exchange (connect, list or call)
    backend_lease_s: float = 15.0  # a backend place's lease; renewed while the call lasts

    # Signs webhook deliveries; production refuses the default and an empty value at start.
    webhook_secret: SecretStr = SecretStr(DEFAULT_WEBHOOK_SECRET)

    # Inbound triggers and schedules (docs/schedules.md). A flow's trigger secret is derived
    # from this key (unset: from webhook_secret), the flow id and a generation; never stored.
    trigger_secret_key: SecretStr | None = None
    # A signed trigger is refused when its timestamp is this far from the server's clock.
    trigger_max_skew_s: int = 300
    scheduler_enabled: bool = True
    scheduler_tick_s: float = 0.5  # how often the leader looks for due schedules
    scheduler_lock_s: float = 3.0  # the leader's Redis lock: a dead leader is replaced after this

    # Retention (README "Retention"; worker/retention.py): days a finished record is kept,
    # counted from its creation; 0 or unset keeps it forever. An owner's row in
    # retention_policies (PUT /v1/retention/{owner}) overrides any of them for that owner.
    retention_runs_days: float | None = Field(default=30.0, ge=0)
    # A finished run's recorded agent steps (GET /v1/runs/{id}/steps). The live event stream
    # is in Redis and expires after events_ttl_s already.
    retention_events_days: float | None = Field(default=30.0, ge=0)
    # Session messages. A run that wrote history is kept while its messages are.
    retention_messages_days: float | None = Field(default=90.0, ge=0)
    # Dead letters: failed runs with error_code exhausted_retries, kept longer to look into.
    retention_dead_letters_days: float | None = Field(default=90.0, ge=0)
    # A session's history capped to its last N turns (a turn: one run's messages); unset/0: no cap.
    retention_session_max_turns: int | None = Field(default=None, ge=0)
    retention_interval_s: float = Field(default=300.0, gt=0)  # how often the leader purges
    retention_batch_size: int = Field(default=1000, ge=1)  # rows per short delete transaction

    # Delivery: a run claimed this many times without finishing fails `exhausted_retries`.
    max_attempts: int = 3
    # Graceful shutdown: SIGTERM lets in-flight runs finish this long, then re-queues the rest.
    shutdown_grace_s: float = 30.0
    # Result writes survive a database outage this long (bounded by the run's deadline too).
    finish_retry_s: float = 120.0

    # LLM calls: retries with exponential backoff and full jitter, honouring Retry-After.
    backend_retries: int = 4  # retries after the first try
    backend_backoff_base_s: float = 0.5
    backend_backoff_max_s: float = 20.0
    # Per-backend circuit breaker (per worker process): open after this many failures in a row.
    breaker_failures: int = 10
    breaker_reset_s: float = 15.0

    # Auth: None = on in production, off in the embedded default (with a warning at start).
    auth_enabled: bool | None = None
    metrics_public: bool = True  # /metrics without a key (scrapers inside the cluster)
    key_cache_s: float = 10.0

    # Rate limit per key (per client IP with auth off): token bucket in Redis; 0 = off.
    rate_limit_per_s: float = 50.0
    rate_limit_burst: int = 100
    # Backpressure: cap on queued runs, overall and per flow (0 = no cap).
    max_queued_runs: int = 100_000
    max_queued_per_flow: int = 20_000
    # ... and per key (owner), so one key cannot fill the queue for the others; with auth
    # off every caller is the one anonymous owner, so it acts as a second overall cap.
    max_queued_per_key: int = 20_000
    # With auth off, requests must name one of these hosts (or localhost, 127.0.0.1, ::1) in
    # Host: a web page cannot reach a local instance by DNS rebinding. Set, it holds always.
    allowed_hosts: list[str] = Field(default_factory=list)

    # LangFlow Loop and Batch Run: hard bounds per node and run (a flow over them fails).
    langflow_loop_max_items: int = 100  # items one Loop iterates over
    langflow_batch_max_rows: int = 100  # rows one Batch Run sends to its model
    langflow_batch_concurrency: int = 8  # model calls one Batch Run has in flight

    # Observability
    metrics_enabled: bool = True  # the API's /metrics
    worker_metrics_port: int = 0  # each worker serves /metrics here; 0 = off
    otel_enabled: bool = False  # OpenTelemetry tracing (pip install '.[otel]')
    otel_service_name: str = "flowfleet"

    # RAG (docs/rag.md): the vector store every worker uses. Unset URL: Chroma embedded in
    # vector_store_path (one host); set: the shared `chroma run` server of the cluster.
    vector_store_url: str | None = None
    vector_store_path: Path = REPO_ROOT / "var" / "chroma"
    # Whether nodes of hosted stores (AstraDB, Pinecone, Qdrant...) run on the configured
    # store under their collection name; None: yes in the embedded default, no in production.
    vector_store_map_hosted: bool | None = None
    rag_max_chunks: int = 20_000  # chunks one ingest may embed
    knowledge_embedding_model: str = "text-embedding-3-small"  # every knowledge base's model
    rag_ingest_wait_s: float = 300.0  # a run waits this long for another worker's ingest

    @property
    def hosted_stores_mapped(self) -> bool:
        if self.vector_store_map_hosted is None:
            return self.env == "embedded"
        return self.vector_store_map_hosted

    @field_validator("database_url")
    @classmethod
    def _normalise_dsn(cls, value: str) -> str:
        # One driver per database: psycopg 3 for PostgreSQL, aiosqlite for SQLite.
        for prefix in ("postgres://", "postgresql://", "postgresql+psycopg2://"):
            if value.startswith(prefix):
                return "postgresql+psycopg://" + value[len(prefix) :]
        if value.startswith("sqlite:///"):
            return "sqlite+aiosqlite:///" + value[len("sqlite:///") :]
        return value

    @field_validator("egress_allowed_cidrs")
    @classmethod
    def _valid_cidrs(cls, value: list[str]) -> list[str]:
        for cidr in value:
            try:
                ipaddress.ip_network(cidr, strict=False)
            except ValueError as exc:
                raise ValueError(f"egress_allowed_cidrs: {cidr!r} is not a network") from exc
        return value

    @model_validator(mode="after")
    def _resolve_backends(self) -> Settings:
        if self.backends_file is not None:
            loaded: Any = yaml.safe_load(self.backends_file.read_text()) or {}
            items = loaded.get("backends", loaded) if isinstance(loaded, dict) else loaded
            self.backends = [BackendConfig.model_validate(b) for b in items]
        if not self.backends:
            self.backends = [self._implicit_backend()]
        names = [b.name for b in self.backends]
        if len(set(names)) != len(names):
            raise ValueError(f"backend names must be unique, got {names}")
        if self.default_backend is None:
            self.default_backend = self.backends[0].name
        elif self.default_backend not in names:
            raise ValueError(f"default_backend {self.default_backend!r} is not one of {names}")
        return self

    def _implicit_backend(self) -> BackendConfig:
        if os.environ.get("OPENAI_API_KEY"):
            return BackendConfig(
                name="openai", base_url="https://api.openai.com/v1", api_key_env="OPENAI_API_KEY"
            )
        return BackendConfig(name="llm-sim", base_url=self.llm_sim_url)

    @model_validator(mode="after")
    def _auth_default(self) -> Settings:
        if self.auth_enabled is None:
            self.auth_enabled = self.env == "production"
        elif not self.auth_enabled and self.env == "production":
            raise ValueError("auth may be off only in the embedded default (env=embedded)")
        return self

    @model_validator(mode="after")
    def _production_secrets(self) -> Settings:
        if self.env == "production":
            secret = self.webhook_secret.get_secret_value().strip()
            if secret in ("", DEFAULT_WEBHOOK_SECRET) or secret.upper().startswith("REPLACE-ME"):
                raise ValueError(
                    "FLOWFLEET_WEBHOOK_SECRET is empty, the default 'change-me' or the "
                    "deploy/k8s placeholder 'REPLACE-ME...'; production "
                    "needs a secret of its own (e.g. `openssl rand -hex 32`)"
                )
        return self

    @property
    def auth_on(self) -> bool:
        return bool(self.auth_enabled)

    @property
    def max_file_body_bytes(self) -> int:
        """An upload's request-body limit: the file limit plus its multipart framing."""
        return self.max_file_bytes + 64 * 1024

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    def sync_database_url(self) -> str:
        """The DSN for synchronous tools (Alembic)."""
        return self.database_url.replace("sqlite+aiosqlite", "sqlite")

    def redis_key(self, *parts: str) -> str:
        return self.redis_namespace + ":".join(parts)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()

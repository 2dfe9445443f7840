"""Prometheus metric definitions, one place for every process (names carry their unit).

Each process (an API replica, a worker) serves its own registry; Prometheus sums
across replicas. Workers use Celery's thread pool, so one process holds all of
its runs' metrics and no multiprocess mode is needed.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

# Latency buckets from a fast cache hit to a long LLM run.
SECONDS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)

# API
HTTP_REQUESTS = Counter(
    "flowfleet_http_requests_total",
    "HTTP requests answered, by route template and status.",
    ["method", "route", "status"],
)
HTTP_LATENCY = Histogram(
    "flowfleet_http_request_duration_seconds",
    "Time to answer an HTTP request (to the end of the body), by route template.",
    ["method", "route"],
    buckets=SECONDS,
)

# Runs
RUNS_SUBMITTED = Counter(
    "flowfleet_runs_submitted_total", "Runs accepted and enqueued by the API.", ["flow"]
)
RUNS_FINISHED = Counter(
    "flowfleet_runs_finished_total", "Runs a worker brought to an end.", ["flow", "status"]
)
RUN_QUEUE_WAIT = Histogram(
    "flowfleet_run_queue_wait_seconds",
    "Time from submission to a worker starting the run (started_at - created_at).",
    ["flow"],
    buckets=SECONDS,
)
RUN_DURATION = Histogram(
    "flowfleet_run_duration_seconds",
    "Time a worker spent executing a run.",
    ["flow", "status"],
    buckets=SECONDS,
)
RUNS_IN_FLIGHT = Gauge("flowfleet_runs_in_flight", "Runs this worker process is executing.")
ADMISSION_LIMIT = Gauge(
    "flowfleet_worker_admission_limit",
    "Runs this worker process admits onto its event loop now (follows the loop's lag).",
)

# LLM calls
LLM_LATENCY = Histogram(
    "flowfleet_llm_request_duration_seconds",
    "Time from sending a chat completion to its last token.",
    ["backend", "model"],
    buckets=SECONDS,
)
LLM_TOKENS = Counter(
    "flowfleet_llm_tokens_total",
    "Tokens sent to (input) and received from (output) LLM backends.",
    ["backend", "model", "direction"],
)
LLM_ERRORS = Counter(
    "flowfleet_llm_errors_total",
    "LLM calls that failed, by kind (http_429, http_500, timeout, connection, ...).",
    ["backend", "model", "kind"],
)

# Caches
CACHE_REQUESTS = Counter(
    "flowfleet_cache_requests_total", "Response cache look-ups, by result (hit, miss).", ["result"]
)
# Compiled-flow cache: read from the worker's FlowCache at scrape time (see worker/metrics.py).
FLOW_CACHE_METRIC = "flowfleet_flow_cache_requests_total"

# Queue: read from Redis at scrape time by the API (see api/metrics.py).
QUEUE_DEPTH_METRIC = "flowfleet_queue_depth_messages"

# Retention (worker/retention.py)
RETENTION_DELETED = Counter(
    "flowfleet_retention_deleted_rows_total",
    "Rows the retention job deleted, by table.",
    ["table"],
)

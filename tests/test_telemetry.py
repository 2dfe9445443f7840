"""Request ids travel into Celery headers; tracing stays off (and unimported) unless enabled."""

from __future__ import annotations

import subprocess
import sys

import structlog

from shared import telemetry
from shared.settings import REPO_ROOT, Settings


def test_propagation_headers_carry_the_bound_request_id() -> None:
    with structlog.contextvars.bound_contextvars(request_id="req-7"):
        assert telemetry.propagation_headers() == {"request_id": "req-7"}
    assert telemetry.propagation_headers() == {}


def test_tracing_is_off_by_default_and_never_imports_opentelemetry() -> None:
    code = "\n".join(
        [
            "import sys",
            "from shared import telemetry",
            "from shared.settings import Settings",
            "assert telemetry.init_tracing(Settings(_env_file=None), 'api') is False",
            "with telemetry.span('x'):",
            "    pass",
            "assert not [m for m in sys.modules if m.startswith('opentelemetry')]",
        ]
    )
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, check=True)
    assert Settings(_env_file=None).otel_enabled is False  # type: ignore[call-arg]

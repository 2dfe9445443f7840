"""Compile and check the lock files every install path uses (``make lock``).

``requirements/dev.txt`` pins everything ``make run``, ``make test`` and CI install (every
extra); ``requirements/main.txt`` pins the runtime dependencies the Docker image installs, at
the same versions. Each file records a hash of pyproject's dependency lists, so a lock that
no longer matches pyproject.toml fails the install (and a test) instead of drifting.

    python requirements/lock.py           # compile both (needs uv: ``make lock`` brings it)
    python requirements/lock.py --check   # exit 1, saying what to run, if a lock is stale
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = ROOT / "pyproject.toml"
DEV = ROOT / "requirements" / "dev.txt"
MAIN = ROOT / "requirements" / "main.txt"
MARK = "# pyproject-sha256: "
PYTHON_VERSION = "3.11"  # the oldest Python pyproject allows, as the Docker image runs


def pyproject_hash(path: Path = PYPROJECT) -> str:
    """A hash of what the locks are compiled from; other pyproject edits leave it alone."""
    project = tomllib.loads(path.read_text())["project"]
    inputs = {
        "requires-python": project.get("requires-python"),
        "dependencies": sorted(project.get("dependencies", [])),
        "optional-dependencies": {
            name: sorted(deps) for name, deps in project.get("optional-dependencies", {}).items()
        },
    }
    return hashlib.sha256(json.dumps(inputs, sort_keys=True).encode()).hexdigest()


def recorded_hash(lock: Path) -> str | None:
    if not lock.exists():
        return None
    for line in lock.read_text().splitlines():
        if line.startswith(MARK):
            return line[len(MARK) :].strip()
    return None


def stale_locks() -> list[Path]:
    want = pyproject_hash()
    return [lock for lock in (DEV, MAIN) if recorded_hash(lock) != want]


def _compile(uv: str, out: Path, *args: str) -> None:
    # uv keeps the versions already pinned in ``out`` when they still fit: re-locking after
    # adding a dependency moves only what must move.
    cmd = [uv, "pip", "compile", "pyproject.toml", "--quiet", "--python-version", PYTHON_VERSION]
    cmd += [
        "--universal",
        "--no-header",
        "--annotation-style",
        "line",
        *args,
        "-o",
        str(out.relative_to(ROOT)),
    ]
    subprocess.run(cmd, cwd=ROOT, check=True)
    header = (
        "# The locked dependencies (requirements/lock.py; regenerate with `make lock`).\n"
        f"{MARK}{pyproject_hash()}\n"
    )
    out.write_text(header + out.read_text())


def compile_locks(uv: str) -> None:
    _compile(uv, DEV, "--all-extras")
    # The runtime lock takes its versions from the dev lock: the image runs what was tested.
    _compile(uv, MAIN, "--constraint", str(DEV.relative_to(ROOT)))


def main(argv: list[str]) -> int:
    if "--check" in argv:
        stale = stale_locks()
        if stale:
            names = ", ".join(str(p.relative_to(ROOT)) for p in stale)
            sys.stderr.write(
                f"{names}: compiled from another pyproject.toml (its dependencies changed "
                "since). Run `make lock` and commit the result.\n"
            )
            return 1
        return 0
    uv = next((a.split("=", 1)[1] for a in argv if a.startswith("--uv=")), "uv")
    compile_locks(uv)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

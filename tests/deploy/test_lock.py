"""The lock files drive every install path and match pyproject.toml (else `make lock`)."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.support.llm_sim import REPO_ROOT

_spec = importlib.util.spec_from_file_location("lock", REPO_ROOT / "requirements" / "lock.py")
assert _spec is not None
assert _spec.loader is not None
lock = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lock)


def _pins(path: Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9._-]+)==([^\s;#]+)", line)
        if match:
            pins[canonicalize_name(match[1])] = match[2]
    return pins


def _requirements(*extras: str) -> list[Requirement]:
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    names = list(project["dependencies"])
    for extra in extras:
        names += project["optional-dependencies"][extra]
    return [Requirement(r) for r in names]


def test_the_locks_were_compiled_from_this_pyproject() -> None:
    assert lock.stale_locks() == [], "pyproject.toml's dependencies changed: run `make lock`"


def test_a_changed_dependency_makes_the_locks_stale(tmp_path: Path) -> None:
    text = (REPO_ROOT / "pyproject.toml").read_text()
    changed = tmp_path / "pyproject.toml"
    changed.write_text(text.replace('"pyyaml>=6.0",', '"pyyaml>=6.0",\n    "left-pad>=1",'))
    assert lock.pyproject_hash(changed) != lock.pyproject_hash()
    # A comment or a tool setting is not a dependency: the lock stays valid.
    changed.write_text(text + "\n# a comment\n")
    assert lock.pyproject_hash(changed) == lock.pyproject_hash()


def test_every_declared_dependency_is_pinned_within_its_bounds() -> None:
    dev, main = _pins(lock.DEV), _pins(lock.MAIN)
    project = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]
    for path, pins, reqs in (
        (lock.DEV, dev, _requirements(*project["optional-dependencies"])),
        (lock.MAIN, main, _requirements()),
    ):
        for req in reqs:
            name = canonicalize_name(req.name)
            assert name in pins, f"{req} is not in {path.name}: run `make lock`"
            assert req.specifier.contains(pins[name], prereleases=True), (
                f"{path.name} pins {name}=={pins[name]} outside {req}: run `make lock`"
            )
    # The image runs exactly the versions the tests ran.
    assert {n: dev.get(n) for n in main} == main


def test_every_install_path_installs_from_the_lock() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text()
    assert "LOCK := requirements/dev.txt" in makefile
    assert "pip install --quiet -r $(LOCK)" in makefile
    assert "--no-deps" in makefile  # the project itself adds nothing unpinned
    assert "$(STAMP): pyproject.toml $(LOCK)" in makefile
    assert "requirements/lock.py --check" in makefile
    assert "make test" in (REPO_ROOT / ".ci" / "run").read_text()
    dockerfile = (REPO_ROOT / "Dockerfile").read_text()
    assert "pip install -r requirements/main.txt" in dockerfile
    assert "requirements/lock.py --check" in dockerfile
    assert "pip install -c requirements/dev.txt" in dockerfile  # extras at locked versions

"""API keys for tests, made the way an operator makes them: `flowfleet keys create`."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass

import httpx

from tests.support.llm_sim import REPO_ROOT
from tests.support.stack import Stack


@dataclass(frozen=True)
class Key:
    id: str  # the owner id of everything the key creates
    key: str  # the secret, printed once


def new_key(stack: Stack, scopes: str, name: str = "test") -> Key:
    """Run `flowfleet keys create` against the stack's database; its id and plain key."""
    out = subprocess.run(
        [sys.executable, "-m", "flowfleet", "keys", "create", "--name", name, "--scopes", scopes],
        env=stack.env,
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    fields = dict(line.split(None, 1) for line in out.splitlines() if line.strip())
    return Key(id=fields["id:"].strip(), key=fields["key:"].strip())


def make_key(stack: Stack, scopes: str, name: str = "test") -> str:
    """A new key's plain value."""
    return new_key(stack, scopes, name).key


def as_key(stack: Stack, key: str) -> httpx.Client:
    """A client that sends the key as a Bearer token."""
    return stack.client(headers={"Authorization": f"Bearer {key}"})

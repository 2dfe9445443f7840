"""Summarise a py-spy raw profile (``py-spy record -f raw``): the share of samples in each
function, inclusive and self, so a profile can be read and diffed as text.

Run: ``python -m benchmarks.profile_summary worker.raw [--top 60]``.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path


def _name(frame: str) -> str:
    # "func (path/to/file.py:123)" -> "func file.py:123"
    func, _, where = frame.partition(" (")
    return f"{func} {where.rstrip(')').rsplit('/', 1)[-1]}".strip()


def summarise(raw: str, top: int = 60) -> str:
    inclusive: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        frames = [_name(f) for f in stack.split(";")]
        total += n
        for name in set(frames):  # a recursive function counts once per sample
            inclusive[name] += n
        own[frames[-1]] += n
    out = [f"{total} samples", "", "inclusive:"]
    out += [f"{100 * n / total:5.1f} %  {name}" for name, n in inclusive.most_common(top)]
    out += ["", "self:"]
    out += [f"{100 * n / total:5.1f} %  {name}" for name, n in own.most_common(top // 2)]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("raw", type=Path)
    parser.add_argument("--top", type=int, default=60)
    args = parser.parse_args()
    print(summarise(args.raw.read_text(), args.top), end="")


if __name__ == "__main__":
    main()

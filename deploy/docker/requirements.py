"""Print the dependencies of the extras named in $EXTRAS (the Dockerfile pins them to the lock)."""

import os
import tomllib

project = tomllib.load(open("pyproject.toml", "rb"))["project"]
deps: list[str] = []
for extra in filter(None, (e.strip() for e in os.environ.get("EXTRAS", "").split(","))):
    deps += project["optional-dependencies"][extra]
if deps:
    print("\n".join(deps))  # noqa: T201 - the output is the point

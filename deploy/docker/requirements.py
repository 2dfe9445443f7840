"""Print pyproject's dependencies (plus the extras named in $EXTRAS) for a cached image layer."""

import os
import tomllib

project = tomllib.load(open("pyproject.toml", "rb"))["project"]
deps = list(project["dependencies"])
for extra in filter(None, (e.strip() for e in os.environ.get("EXTRAS", "").split(","))):
    deps += project["optional-dependencies"][extra]
print("\n".join(deps))  # noqa: T201 - the output is the point

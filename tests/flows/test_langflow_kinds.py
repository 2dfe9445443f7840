"""Component kinds are named once (flows/langflow/kinds.py) and every one is implemented."""

from __future__ import annotations

from flows.langflow.components import SIMPLE_COMPONENTS
from flows.langflow.kinds import Kind
from flows.langflow.specs import SPECS, spec_for


def test_every_kind_has_a_spec_and_compares_as_langflow_writes_it() -> None:
    """spec_for finds each kind by the plain string of an export; kinds are that string."""
    for kind in Kind:
        spec = spec_for(str(kind.value))
        assert spec is not None, kind
        assert spec.kind == kind
        assert spec.kind == kind.value  # a StrEnum: equal to the exported string
    assert {spec.kind for spec in SPECS} >= set(Kind)


def test_simple_components_are_keyed_by_kind() -> None:
    assert all(isinstance(kind, Kind) for kind in SIMPLE_COMPONENTS)

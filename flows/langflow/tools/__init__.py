"""The tools an agent can call: flowfleet's own implementations, none runs flow code."""

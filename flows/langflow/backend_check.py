"""Upload-time routing check: every model node of a flow has a backend that may serve it.

Light (no LangChain), so the API runs it on upload: in production a provider with no
configured backend, a base URL no backend has (ad-hoc backends off) or a model outside the
serving backend's patterns is a 422 naming the node and field. The worker routes the full
``ModelSpec`` (components.model_spec) the same way when it compiles the flow.
"""

from __future__ import annotations

from typing import Any

from flows.base import FlowProblem
from flows.langflow.document import LangflowDocument, LangflowNode, node_problem
from flows.routing import BackendNotAllowed, ModelSpec, route
from shared.settings import Settings, get_settings

# Provider components of LangFlow: the component names its provider.
PROVIDER_COMPONENTS = {
    "OpenAIModel": "openai",
    "AnthropicModel": "anthropic",
    "GoogleGenerativeAIModel": "google",
    "GroqModel": "groq",
    "OllamaModel": "ollama",
    "LMStudioModel": "lmstudio",
    "AzureOpenAIModel": "azure",
    "MistralModel": "mistral",
    "NVIDIAModelComponent": "nvidia",
    "DeepSeekModelComponent": "deepseek",
    "OpenRouterComponent": "openrouter",
    "xAIModel": "xai",
    "WatsonxAIComponent": "ibm-watsonx",
}


def _value(node: LangflowNode, name: str) -> Any:
    raw = node.template.get(name)
    return raw.get("value") if isinstance(raw, dict) else None


def node_route_spec(node: LangflowNode) -> ModelSpec:
    """What routing needs of a model node: provider, model name, base URL."""
    provider = PROVIDER_COMPONENTS.get(node.kind or "")
    model_name = _value(node, "model_name")
    # LangFlow 1.8+: ``model`` is a list of {provider, name, metadata}; the first is used.
    chosen = _value(node, "model")
    if isinstance(chosen, list) and chosen and isinstance(chosen[0], dict):
        provider = chosen[0].get("provider") or provider
        model_name = chosen[0].get("name") or model_name
    provider = _value(node, "provider") or provider
    base_url = _value(node, "openai_api_base") or _value(node, "base_url")
    return ModelSpec(
        model_name=model_name if isinstance(model_name, str) and model_name else None,
        base_url=base_url if isinstance(base_url, str) and base_url else None,
        provider=provider if isinstance(provider, str) and provider else None,
    )


def routing_problems(doc: LangflowDocument, settings: Settings | None = None) -> list[FlowProblem]:
    """A problem per model node that no configured backend may serve."""
    settings = settings or get_settings()
    problems: list[FlowProblem] = []
    for node in doc.nodes.values():
        if node.spec is None or not node.spec.is_model:
            continue
        try:
            route(node_route_spec(node), settings)
        except BackendNotAllowed as exc:
            problems.append(node_problem(f"component {node.id}: {exc}", node, exc.field))
    return problems

"""Components flowfleet refuses on purpose, and why: the reason a 422 names.

Families: components whose behaviour is Python code from the flow (never run), components
that are a third-party SaaS not runnable here (the problem names the service), SQL against
a database the flow names, components that write the worker's files, and retrieval (RAG)
components, which a later release serves. Light: the API imports it.
"""

from __future__ import annotations

# Kinds whose behaviour is code the flow carries or the user types: never run.
CODE_KINDS = frozenset(
    {
        "CustomComponent",
        "PythonREPLComponent",
        "PythonREPLToolComponent",
        "PythonREPLTool",
        "PythonCodeStructuredTool",
        "PythonFunction",
        "PythonFunctionComponent",
        "CodeBlock",
        "LambdaFilterComponent",
        "SmartTransform",
        "RunFlowComponent",
        "SubFlowComponent",
        "FlowTool",
    }
)

# kind (or a prefix ending in "*") -> the third-party service it needs.
SAAS_SERVICES: dict[str, str] = {
    "AssemblyAI*": "AssemblyAI",
    "AgentQL": "AgentQL",
    "Apify*": "Apify",
    "YouTube*": "YouTube",
    "needle": "Needle",
    "Needle*": "Needle",
    "Gmail*": "Gmail",
    "Composio*": "Composio",
    "YfinanceComponent": "Yahoo Finance",
    "YahooFinance*": "Yahoo Finance",
    "ScrapeGraph*": "ScrapeGraph AI",
    "RemixDocumentation": "NVIDIA Remix documentation",
    "AstraDB*": "DataStax Astra DB",
    "Notion*": "Notion",
    "Firecrawl*": "Firecrawl",
    "GoogleDrive*": "Google Drive",
    "Slack*": "Slack",
    "Jira*": "Jira",
    "Confluence*": "Confluence",
    "Exa*": "Exa",
    "SerpAPI": "SerpAPI",
    "Wolfram*": "Wolfram Alpha",
}

# Retrieval components: the RAG starters, served by a later release (File is served:
# flows/langflow/file_node.py).
RAG_KINDS = frozenset(
    {
        "SplitText",
        "KnowledgeBase",
        "Knowledge",
        "KnowledgeIngestion",
        "EmbeddingModel",
        "OpenAIEmbeddings",
        "FAISS",
        "Chroma",
        "Qdrant",
        "pgvector",
        "Directory",
    }
)
# Components that query a SQL database with credentials from the flow.
SQL_KINDS = frozenset({"SQLComponent", "SQLDatabase", "SQLDatabaseComponent", "SQLAgent"})
# Components that write to or read from the worker's own disk.
LOCAL_FILE_KINDS = frozenset({"SaveToFile", "SaveFile", "WriteFile"})


def saas_service(kind: str) -> str | None:
    """The third-party service a component needs, or None."""
    for pattern, service in SAAS_SERVICES.items():
        if kind == pattern or (pattern.endswith("*") and kind.startswith(pattern[:-1])):
            return service
    return None


def refusal_reason(node_id: str, kind: str) -> str | None:
    """Why flowfleet refuses this component (a sentence for the 422), or None."""
    if kind in CODE_KINDS:
        return (
            f"component {node_id} ({kind}) runs Python code from the flow; flowfleet never "
            "runs code from a flow: replace it with built-in components"
        )
    if (service := saas_service(kind)) is not None:
        return (
            f"component {node_id} ({kind}) needs the third-party service {service}, which "
            "flowfleet does not call: remove the component or replace it"
        )
    if kind in SQL_KINDS:
        return (
            f"component {node_id} ({kind}) runs SQL against a database the flow names; "
            "flowfleet does not connect flows to databases (the query could read or change "
            "anything the credentials reach): remove it or put the data behind an API Request"
        )
    if kind in LOCAL_FILE_KINDS:
        return (
            f"component {node_id} ({kind}) writes files on the server, which flowfleet's "
            "workers do not allow: remove it (the run's result holds the output)"
        )
    if kind in RAG_KINDS:
        return (
            f"component {node_id} ({kind}) is a file or retrieval (RAG) component, which "
            "flowfleet does not serve yet: remove it"
        )
    return None

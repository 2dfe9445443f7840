"""Specs of LangFlow's RAG components: Split Text, embeddings nodes, vector store nodes.

Facts from LangFlow's lfx sources (``processing/split_text.py``, ``embeddings``,
``vectorstores``/``datastax``...). Imported by ``specs`` (it extends ``SPECS``); no
LangChain here. Which vector store nodes run on the configured store, and the setting
that maps hosted ones, is ``hosted_store_problem``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flows.langflow.specs import ComponentSpec

EMBEDDINGS = "Embeddings"
VECTOR_STORE = "VectorStore"

# kind -> (display name, the field naming the model, the field naming a base URL, aliases)
EMBEDDING_KINDS: dict[str, tuple[str, str, str | None, tuple[str, ...]]] = {
    "EmbeddingModel": ("Embedding Model", "model", "api_base", ("EmbeddingModelComponent",)),
    "OpenAIEmbeddings": ("OpenAI Embeddings", "model", "openai_api_base", ()),
    "AzureOpenAIEmbeddings": ("Azure OpenAI Embeddings", "model", "azure_endpoint", ()),
    "OllamaEmbeddings": ("Ollama Embeddings", "model_name", "base_url", ()),
    "GoogleGenerativeAIEmbeddings": (
        "Google Generative AI Embeddings",
        "model_name",
        None,
        ("Google Generative AI Embeddings",),
    ),
    "HuggingFaceInferenceAPIEmbeddings": (
        "Hugging Face Embeddings Inference",
        "model_name",
        "inference_endpoint",
        ("HuggingFaceEmbeddingsInference",),
    ),
}

# The provider each embeddings kind stands for (EmbeddingModel names its own per model).
EMBEDDING_PROVIDERS = {
    "OpenAIEmbeddings": "OpenAI",
    "AzureOpenAIEmbeddings": "Azure OpenAI",
    "OllamaEmbeddings": "Ollama",
    "GoogleGenerativeAIEmbeddings": "Google Generative AI",
    "HuggingFaceInferenceAPIEmbeddings": "HuggingFace",
}

# Stores that run on this machine: Chroma (the configured store) and FAISS (local, mapped
# onto it too). Hosted ones run on the configured store only when the setting maps them.
LOCAL_STORES = ("Chroma", "FAISS")
HOSTED_STORES = (
    "AstraDB",
    "Pinecone",
    "MongoDBAtlasVector",
    "QdrantVectorStoreComponent",
    "pgvector",
    "Milvus",
    "Weaviate",
    "Redis",
    "Elasticsearch",
    "OpenSearch",
    "SupabaseVectorStore",
    "Cassandra",
    "Upstash",
    "Couchbase",
    "Clickhouse",
)
STORE_ALIASES = {
    "Chroma": ("ChromaVectorStoreComponent", "Chroma DB"),
    "FAISS": ("FaissVectorStoreComponent",),
    "AstraDB": ("AstraDBVectorStoreComponent", "Astra DB"),
    "Pinecone": ("PineconeVectorStoreComponent",),
    "MongoDBAtlasVector": ("MongoVectorStoreComponent", "MongoDB Atlas"),
    "QdrantVectorStoreComponent": ("Qdrant",),
    "pgvector": ("PGVectorStoreComponent", "PGVector"),
    "Milvus": ("MilvusVectorStoreComponent",),
    "Weaviate": ("WeaviateVectorStoreComponent",),
    "Redis": ("RedisVectorStoreComponent",),
    "Elasticsearch": ("ElasticsearchVectorStoreComponent",),
    "OpenSearch": ("OpenSearchVectorStoreComponent",),
    "SupabaseVectorStore": ("SupabaseVectorStoreComponent", "Supabase"),
    "Cassandra": ("CassandraVectorStoreComponent",),
    "Upstash": ("UpstashVectorStoreComponent",),
    "Couchbase": ("CouchbaseVectorStoreComponent",),
    "Clickhouse": ("ClickhouseVectorStoreComponent",),
}
VECTOR_STORE_KINDS = frozenset((*LOCAL_STORES, *HOSTED_STORES))
# Where each store names its collection; the first one set wins, else "langflow".
COLLECTION_FIELDS = (
    "collection_name",
    "index_name",
    "collection",
    "table_name",
    "knowledge_base",
)
# LangFlow's knowledge bases (1.5+): named collections of the owner (``KnowledgeComponent``).
KNOWLEDGE_KINDS = frozenset({"Knowledge", "KnowledgeBase", "KnowledgeIngestion"})
# The field a store or knowledge node ingests from.
INGEST_FIELDS = ("ingest_data", "input_df")
DEFAULT_COLLECTION = "langflow"

RAG_KINDS = frozenset(
    ("SplitText", *EMBEDDING_KINDS, *LOCAL_STORES, *HOSTED_STORES, *KNOWLEDGE_KINDS)
)


def rag_specs() -> tuple[ComponentSpec, ...]:
    """The RAG components' specs (``specs`` adds them to ``SPECS``)."""
    # Imported here: ``specs`` imports this module while it is being built.
    from flows.langflow.specs import DATA, DATAFRAME, MESSAGE, ComponentSpec, FieldSpec

    msg: tuple[str, ...] = (MESSAGE,)
    embedding_out: dict[str, tuple[str, ...]] = {"embeddings": (EMBEDDINGS,)}
    split_text = ComponentSpec(
        "SplitText",
        "Split Text",
        (
            FieldSpec("data_inputs", "other", (DATA, DATAFRAME, MESSAGE), required=True),
            FieldSpec("mode", "str", default=""),  # 1.10+: Recursive (default) or Character
            FieldSpec("chunk_size", "int", default=1000),
            FieldSpec("chunk_overlap", "int", default=200),
            FieldSpec("separator", "str", msg, default="\n"),
            FieldSpec("custom_separator", "str", msg, default=""),
            FieldSpec("recursive_separators", "str", msg, default=""),
            FieldSpec("recursive_separators_bool", "bool", default=False),
            FieldSpec("text_key", "str", msg, default="text"),
            FieldSpec("keep_separator", "str", default="False"),
            FieldSpec("clean_output", "bool", default=False),
        ),
        {"dataframe": (DATAFRAME,), "chunks": (DATA,)},
        aliases=("SplitTextComponent",),
    )

    embedding_common = (
        FieldSpec("dimensions", "int"),
        FieldSpec("chunk_size", "int", default=1000),
        FieldSpec("max_retries", "int", default=3),
        FieldSpec("request_timeout", "float"),
        FieldSpec("model_kwargs", "dict", default={}),
    )

    embedding_specs = tuple(
        ComponentSpec(
            kind,
            display,
            (
                FieldSpec(model_field, "str", default=""),
                *((FieldSpec(url_field, "str", msg, default=""),) if url_field else ()),
                *embedding_common,
            ),
            embedding_out,
            aliases=aliases,
        )
        for kind, (display, model_field, url_field, aliases) in EMBEDDING_KINDS.items()
    )

    store_fields = (
        FieldSpec("ingest_data", "other", (DATA, DATAFRAME)),
        FieldSpec("search_query", "str", msg, default=""),
        FieldSpec("embedding", "other", (EMBEDDINGS,)),
        FieldSpec("embedding_model", "other", (EMBEDDINGS,)),  # AstraDB's name for it
        FieldSpec("number_of_results", "int", default=4),
        FieldSpec("search_type", "str", default="Similarity"),
        FieldSpec("search_score_threshold", "float", default=0.0),
        # AstraDB's Hybrid Search: lexical terms (and a reranker, which maps to none here).
        FieldSpec("search_method", "str", default="Vector Search"),
        FieldSpec("lexical_terms", "str", msg, default=""),
        *(FieldSpec(name, "str", default="") for name in COLLECTION_FIELDS),
    )
    store_out: dict[str, tuple[str, ...]] = {
        "search_results": (DATA,),
        "dataframe": (DATAFRAME,),
        "vectorstoreconnection": (VECTOR_STORE,),
    }
    store_specs = tuple(
        ComponentSpec(kind, kind, store_fields, store_out, aliases=STORE_ALIASES.get(kind, ()))
        for kind in (*LOCAL_STORES, *HOSTED_STORES)
    )
    any_rows = (MESSAGE, DATA, DATAFRAME, "JSON", "Table")
    knowledge_fields = (
        FieldSpec("knowledge_base", "str", default=""),
        FieldSpec("mode", "str", default="Retrieve"),
        FieldSpec("input_df", "other", any_rows),
        FieldSpec("column_config", "table", default=[]),
        FieldSpec("chunk_size", "int", default=1000),
        FieldSpec("allow_duplicates", "bool", default=False),
        FieldSpec("search_query", "str", msg, default=""),
        FieldSpec("metadata_filter", "str", msg, default=""),
        FieldSpec("top_k", "int", default=5),
        FieldSpec("include_metadata", "bool", default=True),
        FieldSpec("include_embeddings", "bool", default=False),
    )
    knowledge_specs = (
        ComponentSpec(
            "Knowledge",
            "Knowledge",
            knowledge_fields,
            {"dataframe_output": (DATA,), "retrieve_data": (DATAFRAME,)},
            aliases=("KnowledgeComponent",),
        ),
        ComponentSpec(
            "KnowledgeBase",
            "Knowledge Base",
            knowledge_fields,
            {"retrieve_data": (DATAFRAME,)},
            aliases=("KnowledgeBaseComponent", "KnowledgeRetrieval"),
        ),
        ComponentSpec(
            "KnowledgeIngestion",
            "Knowledge Ingestion",
            knowledge_fields,
            {"dataframe_output": (DATAFRAME,)},
            aliases=("KnowledgeIngestionComponent",),
        ),
    )
    return (split_text, *embedding_specs, *store_specs, *knowledge_specs)


def collection_of(values: dict[str, Any]) -> str:
    """The collection a vector store node names (its flow-level name, not the store's)."""
    for name in COLLECTION_FIELDS:
        value = values.get(name)
        if isinstance(value, str) and value.strip():
            return value.strip()
    return DEFAULT_COLLECTION


def hosted_store_problem(kind: str | None, node_id: str, mapped: bool) -> str | None:
    """Why a hosted store node cannot run here, or None (local, or mapped by the setting)."""
    if kind not in HOSTED_STORES or mapped:
        return None
    return (
        f"component {node_id} is a {kind} vector store, a hosted service flowfleet does not "
        "call: set FLOWFLEET_VECTOR_STORE_MAP_HOSTED=true to run it on the configured store "
        "(Chroma; same collection name), or replace it with a Chroma component"
    )

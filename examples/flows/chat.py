"""A chat with memory: the session's earlier turns come before the new user message."""

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate, MessagesPlaceholder

from flows.models import chat_model

NAME = "Chat with memory"
DESCRIPTION = "A friendly assistant that remembers the conversation (pass a session_id)."
MODEL = "gpt-4o-mini"
USES_HISTORY = True

prompt = ChatPromptTemplate.from_messages(
    [
        ("system", "You are a helpful assistant. Use the conversation so far."),
        MessagesPlaceholder("history"),
        ("human", "{input}"),
    ]
)


def build():  # type: ignore[no-untyped-def]
    """Built once per worker process."""
    return prompt | chat_model(MODEL, temperature=0.7) | StrOutputParser()

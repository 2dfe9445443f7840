"""A single prompt: a fixed system instruction, the run's input as the user message."""

from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate

from flows.models import chat_model

NAME = "Plain prompt"
DESCRIPTION = "Answers the input in one model call with a fixed system prompt."
MODEL = "gpt-4o-mini"

prompt = ChatPromptTemplate.from_messages(
    [
        ("system", "You are a concise assistant. Answer in one paragraph."),
        ("human", "{input}"),
    ]
)


def build():  # type: ignore[no-untyped-def]
    """Built once per worker process; the model shares its backend's connection pool."""
    return prompt | chat_model(MODEL, temperature=0.2) | StrOutputParser()

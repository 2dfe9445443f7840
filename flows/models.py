"""Chat models for flows: route a model request to a configured backend.

Every flow, Python or LangFlow, gets its chat model here, so routing, keys
and connection pools live in one place. One HTTP connection pool per backend
(and event loop) is shared by every model instance that points at it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import AbstractAsyncContextManager
from contextvars import ContextVar
from typing import Any, ClassVar, Protocol

import httpx2
import openai
import pydantic
from langchain_core.callbacks import AsyncCallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult
from langchain_openai import ChatOpenAI
from openai import DefaultAioHttpClient

from flows.retry import CircuitBreaker, RetryPolicy, breaker_for, give_up, is_timeout
from flows.routing import BackendNotAllowed, ModelSpec, route
from shared.settings import BackendConfig, get_settings

__all__ = [
    "BackendNotAllowed",
    "ModelSpec",
    "backend_place",
    "chat_model",
    "route",
    "set_limiter",
]


class Limiter(Protocol):
    """Fleet-wide places per backend (the worker installs ``shared.backend_limits``)."""

    def slot(self, backend: str, limit: int) -> AbstractAsyncContextManager[None]: ...


_limiter: Limiter | None = None
# Set while a call holds its place, so a call that nests another (``_agenerate`` streaming
# through ``_astream``) takes one place, not two.
_holding: ContextVar[bool] = ContextVar("flowfleet_backend_slot", default=False)


def set_limiter(limiter: Limiter | None) -> None:
    """Install the process's limiter; models of backends with ``max_concurrency`` use it."""
    global _limiter
    _limiter = limiter


@contextlib.asynccontextmanager
async def _backend_slot(model: BaseChatModel) -> AsyncIterator[None]:
    meta = model.metadata or {}
    limit = meta.get("flowfleet_max_concurrency")
    if _limiter is None or not limit or _holding.get():
        yield
        return
    async with _limiter.slot(str(meta["flowfleet_backend"]), int(limit)):
        token = _holding.set(True)
        try:
            yield
        finally:
            _holding.reset(token)


@contextlib.asynccontextmanager
async def backend_place(backend: str, limit: int | None) -> AsyncIterator[None]:
    """A place of the backend's fleet-wide limit for a call that is not a chat model's."""
    if _limiter is None or not limit or _holding.get():
        yield
        return
    async with _limiter.slot(backend, int(limit)):
        yield


_clients: dict[tuple[int, str], httpx2.AsyncClient] = {}


def _http_client(backend: BackendConfig) -> httpx2.AsyncClient:
    """The backend's one HTTP client per event loop, on aiohttp's connection pool.

    httpx's pool scans every pooled connection (a poll() per idle one) on each request and
    each response close: a cost that grows with the pool. aiohttp's connector hands out idle
    connections in O(1); the OpenAI SDK ships this transport (``DefaultAioHttpClient``).
    """
    # Clients are bound to the loop they first ran on; the worker has one loop.
    try:
        loop_id = id(asyncio.get_running_loop())
    except RuntimeError:
        loop_id = 0
    key = (loop_id, backend.base_url)
    client = _clients.get(key)
    if client is None:
        client = DefaultAioHttpClient(
            timeout=httpx2.Timeout(backend.timeout_s, connect=10.0),
            # 0: no cap on connections (aiohttp's default is 100); limits are the backend's
            # fleet-wide max_concurrency instead.
            limits=httpx2.Limits(max_connections=0),
        )
        _clients[key] = client
    return client


async def close_http_clients() -> None:
    """Close this loop's backend clients (their pooled connections) at shutdown."""
    loop_id = id(asyncio.get_running_loop())
    for key in [k for k in _clients if k[0] == loop_id]:
        await _clients.pop(key).aclose()


class ValidatingAsyncOpenAI(openai.AsyncOpenAI):
    """The OpenAI SDK's async client, reading responses with pydantic's compiled validator.

    The SDK builds each response model field by field in Python (``construct_type``, which
    introspects the types on every call), most of a streamed run's CPU for its
    ``ChatCompletionChunk`` objects. A well-formed response is validated in pydantic-core
    instead (the SDK's own strict mode); one a lenient OpenAI-compatible server shapes
    differently falls back to the SDK's path, so nothing is refused that the stock client
    accepts.
    """

    def _process_response_data(
        self, *, data: object, cast_to: type[Any], response: httpx2.Response
    ) -> Any:
        if (
            isinstance(data, dict)
            and isinstance(cast_to, type)
            and issubclass(cast_to, openai.BaseModel)
        ):
            try:
                return cast_to.model_validate(data)
            except pydantic.ValidationError:
                pass
        return super()._process_response_data(data=data, cast_to=cast_to, response=response)


class JsonChatCompletions(openai.resources.chat.AsyncCompletions):
    """``chat.completions`` that posts LangChain's request body as it is.

    The SDK's ``create`` walks every request through its TypedDict transform (renaming
    aliased keys, formatting dates and files), recursively over each message, a real share
    of the worker's CPU. LangChain's body is already the JSON the API takes (a test checks
    that the transform leaves such bodies unchanged), so this sends it through the
    client's documented ``post`` for custom requests. LangChain reaches it
    as ``create`` and ``with_raw_response.create``; everything else is the SDK's.
    """

    async def create(  # type: ignore[override]
        self,
        *,
        extra_headers: Mapping[str, str] | None = None,
        extra_query: Mapping[str, object] | None = None,
        extra_body: Mapping[str, object] | None = None,
        timeout: float | httpx2.Timeout | None | openai.NotGiven = openai.NOT_GIVEN,
        **body: Any,
    ) -> Any:
        options: dict[str, Any] = {}
        if extra_headers is not None:
            options["headers"] = extra_headers
        if extra_query is not None:
            options["params"] = extra_query
        if extra_body is not None:
            options["extra_json"] = extra_body
        if not isinstance(timeout, openai.NotGiven):
            options["timeout"] = timeout
        stream = bool(body.get("stream"))
        return await self._client.post(  # type: ignore[call-overload]
            "/chat/completions",
            body=body,
            options=options,
            cast_to=openai.types.chat.ChatCompletion,
            stream=stream,
            stream_cls=openai.AsyncStream[openai.types.chat.ChatCompletionChunk],
        )


class Resilient(BaseChatModel):
    """Backend resilience for any LangChain chat model: mix in before the model's class.

    Each attempt holds a place of the backend's fleet-wide limit (``_backend_slot``; backoff
    sleeps do not), goes through the backend's circuit breaker and retry policy. The
    backend's name and limit travel in ``metadata`` (set by ``chat_model``), so one mixin
    serves ChatOpenAI, ChatAnthropic and ChatGoogleGenerativeAI alike.
    """

    # LangChain's ``stream=`` switch of ainvoke reaches ``_agenerate`` as a kwarg too:
    # ChatOpenAI reads it; others (ChatGoogleGenerativeAI) would send it on and be refused.
    _keeps_stream_kwarg: ClassVar[bool] = True

    def _breaker(self) -> tuple[RetryPolicy, CircuitBreaker]:
        meta = self.metadata or {}
        name = str(meta.get("flowfleet_backend") or "default")
        return RetryPolicy.from_settings(get_settings()), breaker_for(name)

    def _client_timed_out(self, exc: BaseException) -> bool:
        # A timeout the flow chose shorter than the backend's: says nothing about the
        # backend's health, so it never counts against the breaker everyone shares.
        return bool((self.metadata or {}).get("flowfleet_client_timeout")) and is_timeout(exc)

    async def _agenerate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        policy, breaker = self._breaker()
        if not self._keeps_stream_kwarg:
            kwargs.pop("stream", None)
        attempt = 0
        while True:
            breaker.before_call()
            try:
                async with _backend_slot(self):
                    result = await super()._agenerate(messages, stop, run_manager, **kwargs)
            except Exception as exc:
                count = not self._client_timed_out(exc)
                await _back_off(policy, breaker, attempt, exc, count=count)
                attempt += 1
                continue
            breaker.record(None)
            return result

    async def _astream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: AsyncCallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[ChatGenerationChunk]:
        policy, breaker = self._breaker()
        if not self._keeps_stream_kwarg:
            kwargs.pop("stream", None)
        attempt = 0
        while True:
            breaker.before_call()
            emitted = False
            try:
                async with _backend_slot(self):
                    async for chunk in super()._astream(messages, stop, run_manager, **kwargs):
                        emitted = True
                        yield chunk
            except Exception as exc:
                # After a token went out, a retry would repeat it in the run's events: give up.
                await _back_off(
                    policy,
                    breaker,
                    attempt,
                    exc,
                    retryable=not emitted,
                    count=not self._client_timed_out(exc),
                )
                attempt += 1
                continue
            breaker.record(None)
            return


class ResilientChatOpenAI(Resilient, ChatOpenAI):
    """``ChatOpenAI`` through the backend's limit, circuit breaker and retry policy."""


async def _back_off(
    policy: RetryPolicy,
    breaker: CircuitBreaker,
    attempt: int,
    exc: Exception,
    *,
    retryable: bool = True,
    count: bool = True,
) -> None:
    """Record a failed attempt; sleep before the next one, or raise when the budget is spent."""
    if count:
        breaker.record(exc)
    else:
        breaker.release_probe()
    wait = policy.next_delay(attempt, exc) if retryable else None
    if wait is None:
        raise give_up(exc, attempt + 1) from exc
    await asyncio.sleep(wait)


def chat_model(spec: ModelSpec | str | None = None, **overrides: Any) -> BaseChatModel:
    """A chat model routed to the right backend, speaking its API, with the backend's own key.

    The key is always the routed backend's configured one (``BackendConfig.api_key``): a
    variable a flow names (``spec.api_key_env``) never chooses it, and an ad-hoc backend gets
    none, so a flow cannot send a worker's secret anywhere (docs/security.md, "Secrets").
    """
    if spec is None or isinstance(spec, str):
        spec = ModelSpec(model_name=spec, **overrides)
    backend = route(spec)
    # A flow's timeout may shorten the backend's, never lengthen it; a shorter one firing is
    # the flow's doing and never trips the breaker (Resilient._client_timed_out).
    timeout = backend.timeout_s
    if spec.timeout_s and spec.timeout_s < backend.timeout_s:
        timeout = spec.timeout_s
    if backend.api == "anthropic":
        model: BaseChatModel = _anthropic_model(spec, backend, timeout)
    elif backend.api == "google":
        model = _google_model(spec, backend, timeout)
    else:
        model = _openai_model(spec, backend, timeout)
    # Routing metadata for metrics, limits, the breaker and error reports.
    model.metadata = {
        "flowfleet_backend": backend.name,
        "flowfleet_max_concurrency": backend.max_concurrency,
        "flowfleet_client_timeout": timeout < backend.timeout_s,
    }
    return model


def _common_params(spec: ModelSpec, backend: BackendConfig, timeout: float) -> dict[str, Any]:
    """The keyword arguments every chat-model class takes alike; each builder adds its API's."""
    params: dict[str, Any] = {
        "model": spec.model_name or "default",
        "base_url": backend.base_url,
        "timeout": timeout,
        "max_retries": 0,  # retries are Resilient's policy (flows/retry.py)
    }
    if spec.streaming is not None:
        params["streaming"] = spec.streaming
    if spec.temperature is not None:
        params["temperature"] = spec.temperature
    return params


def _openai_model(spec: ModelSpec, backend: BackendConfig, timeout: float) -> ResilientChatOpenAI:
    api_key = backend.api_key()
    kwargs: dict[str, Any] = dict(spec.model_kwargs)
    if spec.json_mode:
        kwargs["response_format"] = {"type": "json_object"}
    client = ValidatingAsyncOpenAI(
        api_key=api_key,
        base_url=backend.base_url,
        timeout=timeout,
        max_retries=0,  # retries are Resilient's policy (flows/retry.py)
        http_client=_http_client(backend),
    )
    params = _common_params(spec, backend, timeout)
    params.update(
        api_key=api_key,
        stream_usage=True,
        root_async_client=client,
        async_client=JsonChatCompletions(client),
        # No per-chunk asyncio.wait_for (a task per streamed chunk): a silent stream is
        # bounded by the client's read timeout and the run's deadline (run_timeout_s).
        stream_chunk_timeout=None,
        model_kwargs=kwargs,
    )
    if spec.max_tokens:
        params["max_tokens"] = spec.max_tokens
    if spec.seed is not None:
        params["seed"] = spec.seed
    return ResilientChatOpenAI(**params)


def _anthropic_model(spec: ModelSpec, backend: BackendConfig, timeout: float) -> BaseChatModel:
    from langchain_anthropic import ChatAnthropic  # only workers that route to Anthropic load it

    cls = _resilient(ChatAnthropic)
    params = _common_params(spec, backend, timeout)
    params.update(
        api_key=backend.api_key(),
        stream_usage=True,
        # The Messages API requires max_tokens; LangFlow's Anthropic component sends 4096.
        max_tokens=spec.max_tokens or 4096,
        model_kwargs=dict(spec.model_kwargs),
    )
    return cls(**params)


def _google_model(spec: ModelSpec, backend: BackendConfig, timeout: float) -> BaseChatModel:
    from langchain_google_genai import ChatGoogleGenerativeAI

    cls = _resilient(ChatGoogleGenerativeAI)
    params = _common_params(spec, backend, timeout)
    params.update(
        google_api_key=backend.api_key(),
        # The Gemini API at base_url with the backend's key: never Vertex AI with ambient
        # credentials, whatever GOOGLE_GENAI_USE_VERTEXAI says in the worker's environment.
        vertexai=False,
    )
    if spec.max_tokens:
        params["max_output_tokens"] = spec.max_tokens
    if spec.seed is not None:
        params["seed"] = spec.seed
    return cls(**params)


_resilient_classes: dict[type[BaseChatModel], type[BaseChatModel]] = {}


def _resilient(base: type[BaseChatModel]) -> type[BaseChatModel]:
    """``base`` with ``Resilient`` mixed in (one class per base, made on first use)."""
    cls = _resilient_classes.get(base)
    if cls is None:
        cls = type(f"Resilient{base.__name__}", (Resilient, base), {"_keeps_stream_kwarg": False})
        _resilient_classes[base] = cls
    return cls

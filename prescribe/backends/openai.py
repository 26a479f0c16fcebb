"""OpenAI-compatible chat-completions backend (Ollama, vLLM, llama.cpp server, hosted APIs).

The server is asked for JSON constrained by the draft's schema, but nothing here relies on it
honouring ``response_format``: the answer is bounded in size, and the prescriber validates it
like every backend's (:func:`prescribe.prompt.parse_draft`: the schema, the allowed characters
of action text, the citations). Server text quoted in errors is escaped (``ascii``), so it
cannot carry control sequences into logs or terminals.
"""

from __future__ import annotations

import json
from typing import Any

import httpx

from core.errors import ModelError
from prescribe.backends.base import BackendUnavailableError, DraftRequest

__all__ = ["MAX_ANSWER_CHARS", "OpenAIBackend", "chat_url"]

#: Longest answer accepted (a draft is a few hundred characters; more is a misbehaving server).
MAX_ANSWER_CHARS = 20_000


def _excerpt(text: str, n: int = 300) -> str:
    return ascii(text[:n])


def chat_url(base_url: str) -> str:
    """The chat-completions endpoint for a server root, a ``/v1`` root or the full endpoint."""
    url = base_url.rstrip("/")
    if url.endswith("/chat/completions"):
        return url
    return f"{url}/chat/completions" if url.endswith("/v1") else f"{url}/v1/chat/completions"


class OpenAIBackend:
    """Asks an OpenAI-compatible server for an answer constrained by ``response_format`` json_schema.

    Args:
        base_url: server root (``http://127.0.0.1:11434``), its ``/v1`` root, or the full endpoint.
        model: model name on that server.
        api_key: bearer token, if the server wants one.
        timeout_s: request timeout.
        temperature: sampling temperature.
        transport: an ``httpx`` transport (tests pass a mock).
    """

    name = "openai"

    def __init__(self, base_url: str, model: str, *, api_key: str | None = None, timeout_s: float = 120.0,
                 temperature: float = 0.0, transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.url = chat_url(base_url)
        self.model = model
        self.temperature = temperature
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.AsyncClient(timeout=timeout_s, headers=headers, transport=transport)

    def body(self, request: DraftRequest) -> dict[str, Any]:
        """The request body sent to the server."""
        return {
            "model": self.model,
            "messages": request.messages,
            "max_tokens": request.max_tokens,
            "temperature": self.temperature,
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": "recommendation", "schema": request.schema, "strict": True}},
        }

    async def complete(self, request: DraftRequest) -> str:
        """The server's answer text.

        Raises:
            ModelError: connection failure, HTTP error status, or an answer without content.
        """
        try:
            resp = await self._client.post(self.url, json=self.body(request))
        except httpx.HTTPError as err:
            raise BackendUnavailableError(f"OpenAI-compatible server at {self.url} failed: {type(err).__name__}: {err}") from err
        if resp.status_code != 200:
            raise ModelError(f"OpenAI-compatible server at {self.url} answered HTTP {resp.status_code}: {_excerpt(resp.text)}")
        try:
            data = resp.json()
            content = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError) as err:
            raise ModelError(f"OpenAI-compatible server at {self.url} sent no message content: {_excerpt(resp.text)}") from err
        if not isinstance(content, str):
            raise ModelError(f"OpenAI-compatible server sent content of type {type(content).__name__}: "
                             f"{json.dumps(content)[:200]}")
        if len(content) > MAX_ANSWER_CHARS:
            raise ModelError(f"OpenAI-compatible server sent {len(content)} characters of content, "
                             f"at most {MAX_ANSWER_CHARS} are accepted")
        return content

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._client.aclose()

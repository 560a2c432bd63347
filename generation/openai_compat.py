"""Provider for OpenAI-compatible chat-completions APIs (OpenAI, YandexGPT's compatible API, local LLM servers)."""

from __future__ import annotations

import json
from typing import Any

import aiohttp
from loguru import logger

from generation.base import FailureReason, GenerationFailed, GenerationRequest, GenerationResult
from generation.offline import pick_title
from generation.prompts import build_messages
from generation.sanitize import normalize_output

DEFAULT_API_URL = "https://api.openai.com/v1"
DEFAULT_MODEL = "gpt-4o-mini"
MAX_RESPONSE_BYTES = 1024 * 1024
# 408/409/425/429 and 5xx are transient on every OpenAI-compatible server we know of; other 4xx mean
# a configuration problem (bad key, unknown model) that retrying will not fix.
_RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})


def chat_completions_url(api_url: str) -> str:
    """Turn a base URL such as https://api.openai.com/v1 into its /chat/completions endpoint."""
    base = api_url.strip().rstrip("/")
    return base if base.endswith("/chat/completions") else base + "/chat/completions"


def _message_text(payload: Any) -> tuple[str, str | None]:
    """Pull the first choice's text and finish_reason out of a chat-completions response."""
    try:
        choice = payload["choices"][0]
        content = choice["message"]["content"]
    except (KeyError, IndexError, TypeError):
        raise GenerationFailed("malformed_response", retryable=False, detail="unexpected response shape") from None
    finish = choice.get("finish_reason") if isinstance(choice, dict) else None
    if content is None:
        return "", finish if isinstance(finish, str) else None
    if isinstance(content, list):
        # Some compatible servers return content as a list of typed parts.
        content = "".join(p.get("text", "") for p in content if isinstance(p, dict) and isinstance(p.get("text"), str))
    if not isinstance(content, str):
        raise GenerationFailed("malformed_response", retryable=False, detail="content is not text")
    return content, finish if isinstance(finish, str) else None


class OpenAICompatibleProvider:
    """Generates greetings through POST {api_url}/chat/completions over one aiohttp session."""

    name = "openai_compatible"

    def __init__(
        self,
        *,
        api_url: str,
        api_key: str,
        model: str,
        timeout_s: float,
        session: aiohttp.ClientSession | None = None,
        temperature: float = 0.8,
        max_tokens: int = 700,
    ) -> None:
        self.model = model
        self.url = chat_completions_url(api_url)
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session = session
        # A session handed in by the backend is shared with other code, so we must not close it.
        self._owns_session = session is None
        self._temperature = temperature
        self._max_tokens = max_tokens

    def __repr__(self) -> str:
        return f"OpenAICompatibleProvider(url={self.url!r}, model={self.model!r})"

    def _redact(self, text: str) -> str:
        return text.replace(self._api_key, "***") if self._api_key else text

    def _get_session(self) -> aiohttp.ClientSession:
        # Created lazily because an aiohttp session must be made inside the running event loop.
        # A borrowed session that its owner already closed is replaced by one of our own.
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
            self._owns_session = True
        return self._session

    def _fail(
        self, reason: FailureReason, retryable: bool, detail: str, body: bytes | bytearray = b"",
        status: int | None = None,
    ) -> GenerationFailed:
        snippet = self._redact(bytes(body[:300]).decode("utf-8", "replace")) if body else ""
        logger.warning("AI generation failed: {} ({}) url={} model={} body={!r}",
                       reason, detail, self.url, self.model, snippet)
        return GenerationFailed(reason, retryable=retryable, detail=self._redact(detail), status=status)

    async def generate(self, request: GenerationRequest) -> GenerationResult:
        """Ask the model for a greeting; raises GenerationFailed with a reason and retryability."""
        body = {
            "model": self.model,
            "messages": build_messages(request),
            "temperature": self._temperature,
            "max_tokens": self._max_tokens,
        }
        headers = {"Authorization": f"Bearer {self._api_key}", "Accept": "application/json"}
        session = self._get_session()
        # `from None` everywhere: aiohttp exceptions carry request_info with our Authorization header,
        # and a chained traceback rendered with variables would leak the key into logs.
        try:
            async with session.post(self.url, json=body, headers=headers, timeout=self._timeout) as resp:
                status = resp.status
                raw = bytearray()
                # A misbehaving server must not make us buffer an unbounded body.
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    raw += chunk
                    if len(raw) > MAX_RESPONSE_BYTES:
                        raise self._fail("malformed_response", False, "response body too large")
        except TimeoutError:
            raise self._fail("timeout", True, "no complete answer in time") from None
        except aiohttp.ClientError as exc:
            raise self._fail("network", True, type(exc).__name__) from None
        if not 200 <= status < 300:
            retryable = status in _RETRYABLE_STATUSES or status >= 500
            raise self._fail("upstream_error", retryable, f"HTTP {status}", raw, status=status)
        try:
            payload = json.loads(raw)
        except ValueError:
            # Usually a proxy's HTML error page or a truncated body: worth another try.
            raise self._fail("malformed_response", True, "body is not JSON", raw) from None
        try:
            content, finish = _message_text(payload)
        except GenerationFailed as exc:
            raise self._fail(exc.reason, exc.retryable, exc.detail, raw) from None
        if finish == "content_filter":
            raise self._fail("content_filter", False, "the model refused the request")
        text = normalize_output(content)
        if not text:
            raise self._fail("empty", True, "the model returned no text")
        model = payload.get("model") if isinstance(payload, dict) else None
        return GenerationResult(
            text=text,
            title=pick_title(request),
            provider=self.name,
            model=model if isinstance(model, str) and model else self.model,
        )

    async def close(self) -> None:
        """Close the aiohttp session if this provider created it."""
        if self._owns_session:
            if self._session is not None and not self._session.closed:
                await self._session.close()
            self._session = None

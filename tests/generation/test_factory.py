"""Provider selection from settings."""

from __future__ import annotations

import pytest

from generation import OfflineProvider, OpenAICompatibleProvider, Provider, make_provider


@pytest.mark.parametrize("key", [None, "", "   "])
async def test_no_key_selects_offline(key):
    provider = make_provider("https://api.openai.com/v1", key, "gpt-4o-mini", 20)
    assert isinstance(provider, OfflineProvider) and isinstance(provider, Provider)
    await provider.close()


async def test_key_selects_remote_with_defaults():
    provider = make_provider(None, " sk-x ", None, 12.5)
    assert isinstance(provider, OpenAICompatibleProvider) and isinstance(provider, Provider)
    assert provider.url == "https://api.openai.com/v1/chat/completions"
    assert provider.model == "gpt-4o-mini"
    assert "sk-x" not in repr(provider)
    await provider.close()


async def test_custom_url_and_model():
    provider = make_provider("http://127.0.0.1:8080/v1", "local", "llama-3", 60)
    assert provider.url == "http://127.0.0.1:8080/v1/chat/completions" and provider.model == "llama-3"
    await provider.close()


@pytest.mark.parametrize("timeout", [0, -1, float("nan"), float("inf")])
def test_bad_timeout_is_rejected(timeout):
    with pytest.raises(ValueError):
        make_provider(None, "sk-x", None, timeout)

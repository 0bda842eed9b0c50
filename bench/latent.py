"""What latent-term vectors cost, with and without them side by side in one run: `python -m bench.latent`.

Each round ingests data/sample into a fresh data folder twice, once as shipped and once with the
embedder's latent terms switched off (the path an index built by an older version takes). The last
round's two knowledge bases then answer the first --questions questions of the tune split, alternating,
--rounds times: the search alone, and the whole extractive answer. The question cache is emptied before
every pass, so each question is embedded anew, as a new question is.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _services(latent: bool):
    from zhiku.core.settings import load_settings
    from zhiku.services import build_services

    folder = Path(tempfile.mkdtemp(prefix="zhiku-bench-latent-"))
    services = build_services(load_settings(data_dir=folder / "data", ollama_host=None, qdrant_url=None,
                                            embed_model="multilingual-e5-small", index_name="zhiku"))
    if not latent:
        services.embedder.has_latent = False
    services.embedder.embed_passages(["warm-up 预热"])  # the model's first call pays its set-up
    services.searcher.warm_up()
    return services


def _spread(values: list[float], unit: str, digits: int = 0) -> str:
    return f"min {min(values):.{digits}f} {unit}, median {statistics.median(values):.{digits}f} {unit}"


def main(argv: list[str] | None = None) -> int:
    from zhiku.retrieval.evaluate import load_questions
    from zhiku.retrieval.types import LOCAL_ADMIN

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--questions", type=int, default=30)
    args = parser.parse_args(argv)

    ingest: dict[bool, list[float]] = {True: [], False: []}
    kept = {}
    for round_ in range(args.rounds):
        for latent in (True, False):
            services = _services(latent)
            start = time.perf_counter()
            results = services.ingestor.ingest_paths([ROOT / "data" / "sample"], "default", LOCAL_ADMIN)
            ingest[latent].append(time.perf_counter() - start)
            failed = [r for r in results if r.status != "added"]
            if failed:
                raise SystemExit(f"ingestion failed: {failed}")
            if round_ == args.rounds - 1:
                kept[latent] = services
            else:
                services.close()
    questions = [q.question for q in load_questions(str(ROOT / "data" / "eval" / "sample_qa.jsonl"), "tune")
                 if q.evidence][: args.questions]
    search: dict[bool, list[float]] = {True: [], False: []}
    answer: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.rounds):
        for latent in (True, False):
            services = kept[latent]
            for step, timings in ((lambda q: services.searcher.search(q, LOCAL_ADMIN, k=5), search),
                                  (lambda q: services.answers.ask(q, LOCAL_ADMIN), answer)):
                services.searcher._vectors.clear()
                start = time.perf_counter()
                for question in questions:
                    step(question)
                timings[latent].append((time.perf_counter() - start) / len(questions) * 1000)
    for services in kept.values():
        services.close()
    for latent, name in ((True, "with latent terms"), (False, "without")):
        print(f"{name}: ingest data/sample {_spread(ingest[latent], 's', 1)}; "
              f"search {_spread(search[latent], 'ms')}; extractive answer {_spread(answer[latent], 'ms')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The ingestion benchmark (bench/ingest.py) on a tiny corpus: its code path, not its figures."""

from __future__ import annotations

import json

import pytest

from conftest import ROOT


@pytest.fixture
def bench(monkeypatch):
    """bench/ runs from the checkout (python -m bench.ingest); it is not an installed package."""
    monkeypatch.syspath_prepend(str(ROOT))
    import bench.corpus
    import bench.ingest

    return bench


def test_every_run_covers_the_whole_corpus_repeated_and_interleaved(bench, tmp_path):
    # guards issue 8 item 10: the seed recipe ran on a quarter of the corpus, and every run only once
    folder = tmp_path / "corpus"
    folder.mkdir()
    files = [bench.corpus.build_file(folder / "policy.pdf", "pdf", "zh", 2, 1),
             bench.corpus.build_file(folder / "notes.md", "md", "en", 1, 2)]
    corpus = {"dir": str(folder), "pages": sum(f.pages for f in files), "files": len(files),
              "chars_per_page": bench.corpus.CHARS_PER_PAGE, "breakdown": {}}

    fig = bench.ingest.measure(corpus, tmp_path / "out", repeat=2, big_pages=2)

    assert [(r["run"], r["repetition"]) for r in fig["runs"]] == [
        ("zhiku", 1), ("raw", 1), ("seed", 1), ("zhiku", 2), ("raw", 2), ("seed", 2)]
    for rep in (1, 2):
        zhiku, raw, seed = (r for r in fig["runs"] if r["repetition"] == rep)
        assert zhiku["files"] == 2 and zhiku["failed"] == [] and zhiku["chunks"] > 0
        # b) embeds exactly the texts zhiku embedded: its passages and their sentences
        assert raw["chunks"] == zhiku["embedded_texts"] > zhiku["chunks"]
        assert seed["files"] == 2 and seed["skipped"] == [] and seed["chunks"] > 0
        assert seed["embed_batch"] == raw["batch"] == fig["batch"]
        assert (tmp_path / "out" / f"rep{rep}" / "zhiku-data").is_dir()
        assert (tmp_path / "out" / f"rep{rep}" / "seed-qdrant").is_dir()

    summary, ratios = fig["summary"], fig["ratios"]
    for kind in ("zhiku", "raw", "seed"):
        assert summary[kind]["repetitions"] == 2
        assert summary[kind]["seconds"]["min"] <= summary[kind]["seconds"]["median"]
        assert summary[kind]["chunks_per_s"]["best"] >= summary[kind]["chunks_per_s"]["median"]
    assert 0 < summary["zhiku"]["embedder_busy"]["median"] <= 1
    assert ratios["zhiku/raw"]["chunks_per_s"]["median"] == pytest.approx(
        summary["zhiku"]["chunks_per_s"]["median"] / summary["raw"]["chunks_per_s"]["median"])
    assert ratios["zhiku/seed"]["pages_per_s"]["min"] == pytest.approx(
        summary["seed"]["seconds"]["min"] / summary["zhiku"]["seconds"]["min"])
    assert len(ratios["zhiku/seed"]["chunks_per_s"]["per_repetition"]) == 2

    big = fig["big_pdf"]
    assert big["status"] == "added" and big["chunks"] >= 2 and big["peak_rss_mb"] > big["rss_after_start_mb"] > 0

    text = bench.ingest.report(fig)
    assert "zhiku/raw chunks/s" in text and "zhiku/seed pages/s" in text and "2-page PDF alone" in text
    assert json.loads(json.dumps(fig))["summary"] == summary  # what --json writes


def test_seed_recipe_splits_at_zhikus_chunk_size_in_zhikus_tokens(bench, settings):
    from zhiku.retrieval.text import count_tokens

    text = bench.corpus.Writer("zh", 3).text(1000)
    pieces = bench.ingest.seed_splitter(settings).split_text(text)

    assert len(pieces) > 1
    assert max(count_tokens(p) for p in pieces) <= settings.chunk_tokens

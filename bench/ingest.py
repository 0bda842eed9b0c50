"""Ingestion benchmark: zhiku end to end against raw embedding and the llama-index seed recipe, repeated.

    python -m bench.ingest [--pages 400] [--repeat 3] [--out DIR] [--big-pages 1000] [--json FILE]

It generates a deterministic mixed corpus (bench/corpus.py), then runs three measurements over the
whole corpus with the same embedding model (multilingual-e5-small, E5Embedder) and the configured chunk
size, overlap and batch size (ZHIKU_CHUNK_TOKENS, ZHIKU_CHUNK_OVERLAP, ZHIKU_EMBED_BATCH):

  a) zhiku: services.ingestor.ingest_paths([corpus], ...) into a fresh embedded (qdrant-edge) index;
  b) raw embedding: the very chunk texts a) passed to the embedder, in its order, embedded again in
     batches of the configured size, nothing else; a/b shows how much of the pipeline hides behind
     embedding;
  c) the seed recipe: SimpleDirectoryReader(corpus).load_data(), then VectorStoreIndex.from_documents
     into llama-index's QdrantVectorStore on qdrant-client's local mode, split by a SentenceSplitter
     with zhiku's chunk size and overlap and embedded through a llama-index adapter around the same
     E5Embedder, in batches of the same size.

Each runs --repeat times, interleaved (a, b, c, a, b, c, ...) so that other work on a shared machine
slows all three alike, every repetition in a fresh data dir and a fresh Qdrant folder. The report gives
the min and median of each, the ratios a/b and a/c on medians and on mins, and the embedder's busy share.
Separately:

  d) peak memory: a generated --big-pages PDF ingested alone in a fresh process (its peak RSS and the
     parse worker's).

The defaults take about 15 minutes on 2 idle cores with the offline model (~7 chunks/s): 400 pages
(404 made) give 618 zhiku chunks, so a run lasts ~85 s and the nine runs ~13 minutes; d) embeds 1,000
chunks, ~2.5 minutes.
Linux only (peak memory and CPU use are read from /proc).
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COLLECTION = "bench"
RUNS = {"zhiku": "a) zhiku end to end (edge index)", "raw": "b) raw embedding of a's chunks",
        "seed": "c) seed recipe (llama-index + Qdrant)"}

# Everything heavy is imported inside functions: the parse workers' fork server re-imports this
# script as its __main__, and should not load the model or llama-index for that.


# ------------------------------------------------------------- measurements
def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def descendants(pid: int) -> list[int]:
    """Every process below pid (the parse workers sit below multiprocessing's fork server)."""
    found, todo = [], [pid]
    while todo:
        kids = _children(todo.pop())
        found += kids
        todo += kids
    return found


def _status(pid: int, field: str) -> int:
    """A kB field of /proc/PID/status (VmHWM is the peak RSS); 0 once the process is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])  # utime + stime
    except (OSError, IndexError):
        return 0


def _system_busy_ticks() -> int:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values[:8]) - idle


class Machine:
    """How busy the machine was during a phase: CPU used by this process tree and by everything else."""

    def __init__(self):
        self.cpus = os.cpu_count() or 1
        self._tick = os.sysconf("SC_CLK_TCK")

    def start(self) -> dict:
        """Start measuring; the process tree is sampled every half second, so workers that exit still count."""
        phase = {"t0": time.perf_counter(), "busy0": _system_busy_ticks(), "first": {}, "last": {},
                 "stop": threading.Event()}
        self._sample(phase, at_start=True)
        phase["thread"] = threading.Thread(target=self._sampler, args=(phase,), daemon=True)
        phase["thread"].start()
        return phase

    def _sample(self, phase: dict, at_start: bool = False) -> None:
        me = os.getpid()
        for pid in [me, *descendants(me)]:
            ticks = _cpu_ticks(pid)
            if ticks:
                phase["first"].setdefault(pid, ticks if at_start else 0)  # a process started later had 0
                phase["last"][pid] = ticks

    def _sampler(self, phase: dict) -> None:
        while not phase["stop"].wait(0.5):
            self._sample(phase)

    def stop(self, phase: dict) -> dict:
        """Wall time and the shares of the machine's CPU used by this process tree and by other processes."""
        phase["stop"].set()
        phase["thread"].join()
        self._sample(phase)
        wall = time.perf_counter() - phase["t0"]
        busy = (_system_busy_ticks() - phase["busy0"]) / self._tick
        ours = sum(phase["last"][pid] - first for pid, first in phase["first"].items()) / self._tick
        capacity = max(wall * self.cpus, 1e-9)
        return {"seconds": wall, "cpu_ours": ours / capacity, "cpu_others": max(0.0, busy - ours) / capacity}


def _parent(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


class PeakWatch:
    """Polls the peak RSS (VmHWM) of this process's descendants while a phase runs."""

    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self.seen: dict[int, dict] = {}  # pid -> {"parent", "cmd", "peak_kb"}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            for pid in descendants(os.getpid()):
                info = self.seen.setdefault(pid, {"parent": _parent(pid), "cmd": _cmdline(pid), "peak_kb": 0})
                info["peak_kb"] = max(info["peak_kb"], _status(pid, "VmHWM"))

    def __enter__(self) -> PeakWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def _forkservers(self) -> set[int]:
        return {pid for pid, info in self.seen.items() if info["parent"] == os.getpid() and "forkserver" in info["cmd"]}

    def worker_peak_kb(self) -> int:
        """The largest parse worker: a child of multiprocessing's fork server."""
        servers = self._forkservers()
        return max((info["peak_kb"] for info in self.seen.values() if info["parent"] in servers), default=0)


class Stopwatch:
    """Adds up the time spent in one method of one object (wrapped on the instance, removed afterwards)."""

    def __init__(self, obj, name: str, record: list | None = None):
        self.obj, self.name, self.seconds = obj, name, 0.0
        method = getattr(obj, name)

        def timed(*args, **kwargs):
            if record is not None:
                record.extend(args[0])  # the texts, so that b) embeds exactly what a) embedded
            t0 = time.perf_counter()
            try:
                return method(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - t0

        setattr(obj, name, timed)

    def remove(self) -> None:
        delattr(self.obj, self.name)


# ------------------------------------------------------------------ phases
def _settings(data_dir: Path):
    from zhiku.core.settings import load_settings

    return load_settings(data_dir=data_dir)  # ZHIKU_CHUNK_TOKENS, ZHIKU_EMBED_BATCH etc. still apply


def run_zhiku(corpus_dir: Path, data_dir: Path, machine: Machine) -> tuple[dict, list[str], object]:
    """a) zhiku end to end in a fresh data dir; returns the figures, the texts it embedded, the open services."""
    from zhiku.retrieval.types import LOCAL_ADMIN
    from zhiku.services import build_services

    shutil.rmtree(data_dir, ignore_errors=True)
    services = build_services(_settings(data_dir))
    try:
        services.embedder.embed_passages(["warm-up 预热"])  # the model's first call pays its set-up
        texts: list[str] = []
        embedding = Stopwatch(services.embedder, "embed_passages", record=texts)
        # the upsert time is a side figure: an index without upsert() (internals change) only loses it
        upserts = Stopwatch(services.index, "upsert") if hasattr(services.index, "upsert") else None
        gc.collect()
        started = machine.start()
        results = services.ingestor.ingest_paths([corpus_dir], COLLECTION, LOCAL_ADMIN)
        figures = machine.stop(started)
        embedding.remove()
        if upserts:
            upserts.remove()
    except BaseException:
        services.close()
        raise
    failed = [(Path(r.path).name, r.error) for r in results if r.status == "failed"]
    figures.update(files=len(results), failed=failed, chunks=sum(r.chunks for r in results),
                   embedded_texts=len(texts), embedding_seconds=embedding.seconds,
                   upsert_seconds=upserts.seconds if upserts else None)
    return figures, texts, services


def run_raw(embedder, texts: list[str], batch: int, machine: Machine) -> dict:
    """b) the same texts through the same model in batches of the configured size, nothing else."""
    gc.collect()
    started = machine.start()
    for start in range(0, len(texts), batch):
        embedder.embed_passages(texts[start : start + batch])
    figures = machine.stop(started)
    figures.update(chunks=len(texts), batch=batch, embedding_seconds=figures["seconds"])
    return figures


def _seed_readers() -> tuple[dict, str]:
    """File readers for the seed recipe: llama-index-readers-file's when installed, else equivalents."""
    try:
        import llama_index.readers.file  # noqa: F401

        return {}, "llama-index-readers-file"
    except ImportError:
        pass
    from llama_index.core.readers.base import BaseReader
    from llama_index.core.schema import Document

    class PDFReader(BaseReader):
        """Like readers-file's PDFReader: one document per page (pypdf), with page_label."""

        def load_data(self, file, extra_info=None, **kwargs):
            from pypdf import PdfReader

            reader = PdfReader(str(file))
            return [Document(text=page.extract_text() or "",
                             metadata={"page_label": reader.page_labels[i], **(extra_info or {})})
                    for i, page in enumerate(reader.pages)]

    class DocxReader(BaseReader):
        """Like readers-file's DocxReader (docx2txt): the document's paragraphs and table cells as text."""

        def load_data(self, file, extra_info=None, **kwargs):
            import docx

            d = docx.Document(str(file))
            parts = [p.text for p in d.paragraphs]
            parts += [cell.text for table in d.tables for row in table.rows for cell in row.cells]
            return [Document(text="\n".join(parts), metadata=extra_info or {})]

    class PandasExcelReader(BaseReader):
        """Like readers-file's PandasExcelReader: every sheet's rows as text, one document per sheet."""

        def load_data(self, file, extra_info=None, **kwargs):
            import pandas as pd

            sheets = pd.read_excel(file, sheet_name=None, header=None)
            return [Document(text="\n".join(" ".join(str(v) for v in row if str(v) != "nan")
                                            for row in df.itertuples(index=False)),
                             metadata={"sheet_name": name, **(extra_info or {})})
                    for name, df in sheets.items()]

    readers = {".pdf": PDFReader(), ".docx": DocxReader(), ".xlsx": PandasExcelReader()}
    return readers, ("stand-ins for llama-index-readers-file's PDFReader, DocxReader and PandasExcelReader "
                     "(that package pins pypdf<7, zhiku needs pypdf>=7)")


def _e5_adapter(embedder, batch: int):
    """The seed's embed_model: a llama-index BaseEmbedding around the same E5Embedder, same batch size."""
    from llama_index.core.embeddings import BaseEmbedding
    from pydantic import PrivateAttr

    class E5Embedding(BaseEmbedding):
        _embedder: object = PrivateAttr()

        def __init__(self, embedder, **kwargs):
            super().__init__(model_name=embedder.name, **kwargs)
            self._embedder = embedder

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._embedder.embed_passages([text])[0].tolist()

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            return self._embedder.embed_passages(texts).tolist()

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._embedder.embed_query(query).tolist()

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

    return E5Embedding(embedder, embed_batch_size=batch)


def seed_splitter(settings):
    """The seed's node parser: llama-index's default SentenceSplitter at zhiku's chunk size and overlap.

    Tokens are counted as zhiku counts them: the seed's default (tiktoken) counts a Chinese character as
    one to three tokens, so the same number would not mean chunks of the same size.
    """
    from llama_index.core.node_parser import SentenceSplitter

    from zhiku.retrieval.text import TOKEN

    return SentenceSplitter(chunk_size=settings.chunk_tokens, chunk_overlap=settings.chunk_overlap,
                            tokenizer=TOKEN.findall)


def run_seed(corpus_dir: Path, store_dir: Path, embedder, settings, machine: Machine) -> dict:
    """c) SimpleDirectoryReader(dir).load_data() then VectorStoreIndex.from_documents into Qdrant."""
    import logging
    import warnings

    from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    logging.getLogger("llama_index").setLevel(logging.ERROR)
    # local mode ignores the payload indexes llama-index asks for; the warning says nothing about speed
    warnings.filterwarnings("ignore", message="Payload indexes have no effect")
    shutil.rmtree(store_dir, ignore_errors=True)
    readers, readers_note = _seed_readers()
    client = QdrantClient(path=str(store_dir))
    try:
        embed_model = _e5_adapter(embedder, settings.embed_batch_size)
        splitter = seed_splitter(settings)
        embedding = Stopwatch(embedder, "embed_passages")
        gc.collect()
        started = machine.start()
        docs = SimpleDirectoryReader(str(corpus_dir), file_extractor=readers or None).load_data()
        storage = StorageContext.from_defaults(vector_store=QdrantVectorStore(client=client, collection_name="seed"))
        VectorStoreIndex.from_documents(docs, storage_context=storage, embed_model=embed_model,
                                        transformations=[splitter])
        figures = machine.stop(started)
        embedding.remove()
        chunks = client.count("seed").count
    finally:
        client.close()
    loaded = {Path(d.metadata.get("file_path", "")).name for d in docs}
    files = sorted(p.name for p in corpus_dir.iterdir())
    with_reader = set(readers) | set(SimpleDirectoryReader.supported_suffix_fn())
    figures.update(chunks=chunks, files=len(files), documents=len(docs), readers=readers_note,
                   skipped=[f for f in files if f not in loaded], embed_batch=embed_model.embed_batch_size,
                   embedding_seconds=embedding.seconds,
                   read_as_plain_text=sorted({Path(f).suffix for f in files} - with_reader))
    return figures


def run_repetitions(corpus_dir: Path, out: Path, repeat: int, settings, machine: Machine,
                    seed: bool = True) -> list[dict]:
    """a, b, c over the whole corpus, `repeat` times interleaved, each repetition in fresh folders."""
    runs: list[dict] = []

    def done(kind: str, rep: int, figures: dict) -> None:
        runs.append({"run": kind, "repetition": rep, **figures})
        print(f"  {RUNS[kind]}: {figures['seconds']:.1f} s, {figures['chunks']} chunks", file=sys.stderr)

    for rep in range(1, repeat + 1):
        print(f"repetition {rep}/{repeat} ...", file=sys.stderr)
        folder = out / f"rep{rep}"
        figures, texts, services = run_zhiku(corpus_dir, folder / "zhiku-data", machine)
        try:
            done("zhiku", rep, figures)
            done("raw", rep, run_raw(services.embedder, texts, settings.embed_batch_size, machine))
            if seed:
                done("seed", rep, run_seed(corpus_dir, folder / "seed-qdrant", services.embedder, settings, machine))
        finally:
            services.close()
        del services, texts
    return runs


def run_big_pdf(path: Path, data_dir: Path) -> dict:
    """d) ingest one big PDF alone in a fresh process; its peak RSS and the parse worker's."""
    shutil.rmtree(data_dir, ignore_errors=True)
    out = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child-ingest", str(path), str(data_dir)],
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"the 1,000-page PDF run failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def child_ingest(path: Path, data_dir: Path) -> None:
    """The fresh process of d): print one JSON line with time, chunks and peak memory."""
    from zhiku.retrieval.types import LOCAL_ADMIN
    from zhiku.services import build_services

    services = build_services(_settings(data_dir))
    before_kb = _status(os.getpid(), "VmHWM")
    with PeakWatch() as watch:
        t0 = time.perf_counter()
        result = services.ingestor.ingest_paths([path], "bench", LOCAL_ADMIN)[0]
        seconds = time.perf_counter() - t0
    services.close()
    print(json.dumps({
        "status": result.status, "error": result.error, "chunks": result.chunks, "seconds": seconds,
        # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork and exec
        "peak_rss_mb": _status(os.getpid(), "VmHWM") / 1024,
        "rss_after_start_mb": before_kb / 1024,
        "worker_peak_rss_mb": watch.worker_peak_kb() / 1024,
    }))


def make_big_pdf(path: Path, pages: int) -> None:
    from bench.corpus import Writer, make_pdf

    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make_pdf(Writer("en", 1000), pages))


# ------------------------------------------------------------------ report
def _rate(n: float, seconds: float) -> float:
    return n / seconds if seconds else 0.0


def summarize(runs: list[dict], pages: int) -> dict:
    """Per run kind: min and median seconds, and chunks/s and pages/s of the fastest and the median run."""
    out = {}
    for kind in RUNS:
        mine = [r for r in runs if r["run"] == kind]
        if not mine:
            continue
        seconds = [r["seconds"] for r in mine]
        chunk_rates = [_rate(r["chunks"], r["seconds"]) for r in mine]
        page_rates = [_rate(pages, r["seconds"]) for r in mine]
        busy = [r["embedding_seconds"] / r["seconds"] for r in mine if r["seconds"]]
        out[kind] = {
            "repetitions": len(mine),
            "chunks": sorted({r["chunks"] for r in mine}),  # one value unless a run lost chunks
            "seconds": {"min": min(seconds), "median": statistics.median(seconds)},
            # "best" is the fastest run (min seconds), the same run whose seconds are "min"
            "chunks_per_s": {"best": max(chunk_rates), "median": statistics.median(chunk_rates)},
            "pages_per_s": {"best": max(page_rates), "median": statistics.median(page_rates)},
            "embedder_busy": {"min": min(busy), "median": statistics.median(busy)},
            "cpu_others_max": max(r.get("cpu_others", 0.0) for r in mine),
        }
    return out


def ratios(runs: list[dict], summary: dict, pages: int) -> dict:
    """zhiku over raw and zhiku over seed: throughput on medians, on mins, and per repetition."""
    out = {}
    # the same chunks and pages for a and b: one ratio says it; c makes its own chunks, so both
    for other, units in (("raw", ("chunks_per_s",)), ("seed", ("chunks_per_s", "pages_per_s"))):
        if other not in summary:
            continue
        entry = {}
        for unit in units:
            a, b = summary["zhiku"][unit], summary[other][unit]
            per_rep = []
            for rep in sorted({r["repetition"] for r in runs}):
                ra = next(r for r in runs if r["run"] == "zhiku" and r["repetition"] == rep)
                rb = next((r for r in runs if r["run"] == other and r["repetition"] == rep), None)
                if rb:
                    n_a, n_b = (ra["chunks"], rb["chunks"]) if unit == "chunks_per_s" else (pages, pages)
                    per_rep.append(_rate(n_a, ra["seconds"]) / _rate(n_b, rb["seconds"]))
            entry[unit] = {"median": a["median"] / b["median"], "min": a["best"] / b["best"],
                           "per_repetition": per_rep}
        out[f"zhiku/{other}"] = entry
    return out


def report(fig: dict) -> str:
    c, s, q, d = fig["corpus"], fig["summary"], fig["ratios"], fig.get("big_pdf")
    lines = [f"corpus: {c['pages']:,} pages in {c['files']} files ({c['dir']}), every run over all of it"]
    lines.append("  " + "  ".join(f"{k} {v['files']} files/{v['pages']} p" for k, v in c["breakdown"].items()))
    lines.append(f"  a page is a PDF page, or {c['chars_per_page']:,} characters of a format without pages; "
                 f"chunk budget {fig['chunk_tokens']} tokens, overlap {fig['chunk_overlap']}, batch {fig['batch']}")
    lines.append(f"  {fig['repeat']} repetitions, interleaved a, b, c; each figure is min (or best) / median")
    lines.append("")
    lines.append(f"{'':40}{'seconds':>16}{'chunks':>8}{'chunks/s':>16}{'pages/s':>14}{'busy':>8}{'others':>8}")

    def pair(values: dict, low: str, high: str, width: int, digits: int) -> str:
        return f"{values[low]:.{digits}f} / {values[high]:.{digits}f}".rjust(width)

    for kind, label in RUNS.items():
        if kind not in s:
            continue
        f = s[kind]
        chunks = "/".join(str(n) for n in f["chunks"])
        lines.append(f"{label:40}{pair(f['seconds'], 'min', 'median', 16, 1)}{chunks:>8}"
                     f"{pair(f['chunks_per_s'], 'best', 'median', 16, 2)}"
                     f"{pair(f['pages_per_s'], 'best', 'median', 14, 2)}"
                     f"{f['embedder_busy']['median'] * 100:7.1f}%{f['cpu_others_max'] * 100:7.0f}%")
    lines.append("  busy: the embedder's share of the run's wall time (median); others: the most CPU other "
                 "processes took during one run")
    lines.append("")

    def ratio_line(name: str, unit: str, goal: str) -> str:
        r = q[name][unit]
        reps = ", ".join(f"{x:.2f}" for x in r["per_repetition"])
        return (f"{name} {unit.replace('_per_s', '/s')}: {r['median']:.3f} on medians, {r['min']:.3f} on mins "
                f"(per repetition {reps})   {goal}")

    if "zhiku/raw" in q:
        lines.append(ratio_line("zhiku/raw", "chunks_per_s", "goal >= 0.85"))
    if "zhiku/seed" in q:
        lines.append(ratio_line("zhiku/seed", "chunks_per_s", "goal >= 3"))
        lines.append(ratio_line("zhiku/seed", "pages_per_s", "goal >= 3"))
    a = [r for r in fig["runs"] if r["run"] == "zhiku"]
    busy = s["zhiku"]["embedder_busy"]
    lines.append(f"embedder busy during a): median {busy['median'] * 100:.1f}%, min {busy['min'] * 100:.1f}%")
    if a[0].get("upsert_seconds") is not None:
        lines.append(f"   upserts (writer thread, overlapping embedding): median "
                     f"{statistics.median(r['upsert_seconds'] for r in a):.1f} s per run")
    seed = next((r for r in fig["runs"] if r["run"] == "seed"), None)
    if seed:
        lines.append(f"seed: {seed['documents']} documents -> {seed['chunks']} chunks (zhiku: {a[0]['chunks']}); "
                     f"embed batch {seed['embed_batch']}; readers: {seed['readers']}")
        lines.append(f"   seed skipped: {', '.join(seed['skipped']) or 'none'}; read as plain text: "
                     f"{', '.join(seed['read_as_plain_text']) or 'none'}")
    for r in a:
        if r["failed"]:
            lines.append(f"zhiku failed files (repetition {r['repetition']}): {r['failed']}")
        if r["embedded_texts"] != r["chunks"]:
            lines.append(f"zhiku embedded {r['embedded_texts']} texts for {r['chunks']} chunks "
                         f"(repetition {r['repetition']}): b) embeds the texts")
    if d:
        lines.append(f"d) {d['pages']:,}-page PDF alone, fresh process: {d['seconds']:.1f} s, {d['chunks']} chunks "
                     f"({_rate(d['chunks'], d['seconds']):.2f}/s); peak RSS {d['peak_rss_mb']:.0f} MB "
                     f"(after start-up {d['rss_after_start_mb']:.0f} MB), "
                     f"parse worker {d['worker_peak_rss_mb']:.0f} MB")
    busy_runs = [f"{r['run']} #{r['repetition']} {r['cpu_others'] * 100:.0f}%" for r in fig["runs"]
                 if r.get("cpu_others", 0) > 0.05]
    lines.append(f"machine: {fig['machine']['cpus']} CPUs; load average at the end {fig['machine']['loadavg_end']}")
    if busy_runs:
        lines.append("   other processes took more than 5% of the CPU during: " + ", ".join(busy_runs)
                     + " (those runs are slower; the min is the least disturbed)")
    return "\n".join(lines)


# -------------------------------------------------------------------- main
def measure(corpus: dict, out: Path, repeat: int, big_pages: int, seed: bool = True) -> dict:
    """Every figure of the benchmark for a corpus folder described as bench.corpus describes it."""
    machine = Machine()
    settings = _settings(out / "settings-only")
    fig: dict = {
        "chunk_tokens": settings.chunk_tokens, "chunk_overlap": settings.chunk_overlap,
        "batch": settings.embed_batch_size, "repeat": repeat, "corpus": corpus, "machine": {"cpus": machine.cpus},
    }
    fig["runs"] = run_repetitions(Path(corpus["dir"]), out, repeat, settings, machine, seed=seed)
    fig["summary"] = summarize(fig["runs"], corpus["pages"])
    fig["ratios"] = ratios(fig["runs"], fig["summary"], corpus["pages"])
    if big_pages:
        big = out / "big" / f"manual_{big_pages}.pdf"
        make_big_pdf(big, big_pages)
        print(f"d) {big_pages}-page PDF in a fresh process ...", file=sys.stderr)
        fig["big_pdf"] = {"pages": big_pages, **run_big_pdf(big, out / "big-data")}
    fig["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    return fig


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=400,
                        help="pages in the corpus; every run covers all of them (default 400: ~15 minutes on 2 cores)")
    parser.add_argument("--repeat", type=int, default=3, help="repetitions of a, b and c (default 3)")
    parser.add_argument("--out", type=Path, help="keep the corpus and indexes here (default: a temporary folder)")
    parser.add_argument("--big-pages", type=int, default=1000, help="pages of the PDF of d); 0 skips d)")
    parser.add_argument("--skip-seed", action="store_true", help="skip c)")
    parser.add_argument("--json", nargs="?", const="-", metavar="FILE", help="write the figures as JSON (- = stdout)")
    parser.add_argument("--child-ingest", nargs=2, metavar=("PDF", "DATA_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_ingest:
        child_ingest(Path(args.child_ingest[0]), Path(args.child_ingest[1]))
        return 0
    if args.repeat < 1 or args.pages < 1:
        parser.error("--pages and --repeat must be at least 1")

    from bench.corpus import CHARS_PER_PAGE, build_corpus

    out = args.out or Path(tempfile.mkdtemp(prefix="zhiku-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"building the corpus in {out / 'corpus'} ...", file=sys.stderr)
    shutil.rmtree(out / "corpus", ignore_errors=True)
    corpus = build_corpus(out / "corpus", args.pages)
    described = {"dir": str(out / "corpus"), "pages": corpus.pages, "files": len(corpus.files),
                 "chars_per_page": CHARS_PER_PAGE, "breakdown": corpus.breakdown()}
    fig = measure(described, out, args.repeat, args.big_pages, seed=not args.skip_seed)
    print(report(fig))
    if args.json:
        text = json.dumps(fig, indent=2, ensure_ascii=False, default=str)
        if args.json == "-":
            print(text)
        else:
            Path(args.json).write_text(text + "\n", encoding="utf-8")
    if not args.out:
        shutil.rmtree(out, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

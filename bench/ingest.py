"""Ingestion benchmark: zhiku end to end, raw embedding of the same chunks, and the seed recipe, in one run.

    python -m bench.ingest [--pages 2000] [--out DIR] [--seed-share 0.25] [--big-pages 1000] [--json [FILE]]

It generates a deterministic mixed corpus (bench/corpus.py), then measures on this machine with the same
embedding model (multilingual-e5-small, E5Embedder) and the configured chunk and batch sizes
(ZHIKU_CHUNK_TOKENS, ZHIKU_EMBED_BATCH):

  a) zhiku: Ingestor.ingest_paths over the whole corpus into a fresh embedded (qdrant-edge) index;
  b) raw embedding: the very chunk texts zhiku indexed, read back from the index, embedded in batches of
     the configured size, nothing else; a/b shows how much of the pipeline is hidden behind embedding;
  c) the seed recipe: SimpleDirectoryReader(dir).load_data(), then VectorStoreIndex.from_documents(...)
     into llama-index's QdrantVectorStore on qdrant-client's local mode, embedding through a llama-index
     adapter around the same E5Embedder, on a stratified share of the corpus;
  d) peak memory: a generated 1,000-page PDF ingested alone in a fresh process (its peak RSS and the
     parse worker's).

Linux only (peak memory and CPU use are read from /proc).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

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

    def __init__(self, obj, name: str):
        self.obj, self.name, self.seconds = obj, name, 0.0
        method = getattr(obj, name)

        def timed(*args, **kwargs):
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


def run_zhiku(corpus_dir: Path, data_dir: Path, machine: Machine) -> tuple[dict, object]:
    """a) zhiku end to end over the corpus; returns the figures and the (open) services."""
    from zhiku.retrieval.types import LOCAL_ADMIN
    from zhiku.services import build_services

    shutil.rmtree(data_dir, ignore_errors=True)
    services = build_services(_settings(data_dir))
    services.embedder.embed_passages(["warm-up 预热"])
    embedding, upserts = Stopwatch(services.embedder, "embed_passages"), Stopwatch(services.index, "upsert")
    started = machine.start()
    results = services.ingestor.ingest_paths([corpus_dir], "bench", LOCAL_ADMIN)
    figures = machine.stop(started)
    embedding.remove()
    upserts.remove()
    failed = [(Path(r.path).name, r.error) for r in results if r.status == "failed"]
    figures.update(files=len(results), failed=failed, chunks=sum(r.chunks for r in results),
                   embedding_seconds=embedding.seconds, upsert_seconds=upserts.seconds)
    return figures, services


def indexed_texts(services, corpus_dir: Path) -> list[str]:
    """Every chunk text in the index, in the order zhiku embedded them (file order, then chunk order)."""
    from zhiku.ingest.pipeline import expand_paths
    from zhiku.retrieval.index import Scope

    order = {p.name: i for i, p in enumerate(expand_paths([corpus_dir]))}
    chunks = services.index.chunks(Scope(["bench"]), limit=10_000_000)
    chunks.sort(key=lambda c: (order.get(c.file_name, len(order)), c.chunk_index))
    return [c.text for c in chunks]


def run_raw(embedder, texts: list[str], batch: int, machine: Machine) -> dict:
    """b) the same texts through the same model in batches of the configured size, nothing else."""
    started = machine.start()
    for start in range(0, len(texts), batch):
        embedder.embed_passages(texts[start : start + batch])
    figures = machine.stop(started)
    figures.update(chunks=len(texts), batch=batch)
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


def _e5_adapter(embedder):
    """The seed's embed_model: a llama-index BaseEmbedding around the same E5Embedder."""
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

    return E5Embedding(embedder)


def run_seed(subset_dir: Path, store_dir: Path, embedder, machine: Machine) -> dict:
    """c) SimpleDirectoryReader(dir).load_data() then VectorStoreIndex.from_documents into Qdrant."""
    import logging

    from llama_index.core import SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.vector_stores.qdrant import QdrantVectorStore
    from qdrant_client import QdrantClient

    logging.getLogger("llama_index").setLevel(logging.ERROR)
    shutil.rmtree(store_dir, ignore_errors=True)
    readers, readers_note = _seed_readers()
    client = QdrantClient(path=str(store_dir))
    embed_model = _e5_adapter(embedder)
    started = machine.start()
    docs = SimpleDirectoryReader(str(subset_dir), file_extractor=readers or None).load_data()
    storage = StorageContext.from_defaults(vector_store=QdrantVectorStore(client=client, collection_name="seed"))
    VectorStoreIndex.from_documents(docs, storage_context=storage, embed_model=embed_model)
    figures = machine.stop(started)
    chunks = client.count("seed").count
    client.close()
    loaded = {Path(d.metadata.get("file_path", "")).name for d in docs}
    files = sorted(p.name for p in subset_dir.iterdir())
    with_reader = set(readers) | set(SimpleDirectoryReader.supported_suffix_fn())
    figures.update(chunks=chunks, files=len(files), documents=len(docs), readers=readers_note,
                   skipped=[f for f in files if f not in loaded], embed_batch=embed_model.embed_batch_size,
                   read_as_plain_text=sorted({Path(f).suffix for f in files} - with_reader))
    return figures


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


# ---------------------------------------------------------------- corpus
def seed_subset(corpus, share: float, folder: Path) -> tuple[Path, int]:
    """Every k-th file of each format and language (at least one each), linked into a folder."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    step = max(1, round(1 / share))
    groups: dict[str, list] = {}
    for f in corpus.files:
        groups.setdefault(f"{f.fmt}/{f.lang}", []).append(f)
    pages = 0
    for files in groups.values():
        for f in files[::step]:
            os.link(f.path, folder / f.path.name)
            pages += f.pages
    return folder, pages


def make_big_pdf(path: Path, pages: int) -> None:
    from bench.corpus import Writer, make_pdf

    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(make_pdf(Writer("en", 1000), pages))


# ------------------------------------------------------------------ report
def _rate(n: float, seconds: float) -> float:
    return n / seconds if seconds else 0.0


def report(fig: dict) -> str:
    c, a, b, s, d = fig["corpus"], fig["zhiku"], fig["raw"], fig.get("seed"), fig.get("big_pdf")
    lines = [f"corpus: {c['pages']:,} pages in {c['files']} files ({c['dir']})"]
    lines.append("  " + "  ".join(f"{k} {v['files']} files/{v['pages']} p" for k, v in c["breakdown"].items()))
    lines.append(f"  a page is a PDF page, or {c['chars_per_page']:,} characters of a format without pages; "
                 f"chunk budget {fig['chunk_tokens']} tokens, batch {fig['batch']}")
    lines.append("")
    lines.append(f"{'':44}{'seconds':>9}{'chunks':>8}{'chunks/s':>10}{'pages/s':>9}{'others CPU':>12}")

    def row(label, f, pages=None):
        pages_s = f"{_rate(pages, f['seconds']):9.2f}" if pages else " " * 9
        return (f"{label:44}{f['seconds']:9.1f}{f['chunks']:8d}{_rate(f['chunks'], f['seconds']):10.2f}"
                f"{pages_s}{f.get('cpu_others', 0) * 100:11.0f}%")

    lines.append(row("a) zhiku end to end (edge index)", a, c["pages"]))
    lines.append(f"   embedding busy {a['embedding_seconds'] / a['seconds'] * 100:.1f}% of a; upserts "
                 f"{a['upsert_seconds']:.1f} s, in the writer thread")
    lines.append(row(f"b) raw embedding of a's chunks, batch {b['batch']}", b))
    if s:
        lines.append(row(f"c) seed recipe on {s['pages']} pages ({s['files']} files)", s, s["pages"]))
    lines.append("")
    ratio_ab = _rate(a["chunks"], a["seconds"]) / _rate(b["chunks"], b["seconds"])
    lines.append(f"a/b throughput (chunks/s): {ratio_ab:.3f}   goal >= 0.85")
    if s:
        lines.append(f"a/c chunks/s: {_rate(a['chunks'], a['seconds']) / _rate(s['chunks'], s['seconds']):.2f}x   "
                     f"a/c pages/s: {_rate(c['pages'], a['seconds']) / _rate(s['pages'], s['seconds']):.2f}x   "
                     "goal >= 3x")
        lines.append(f"   seed: {s['documents']} documents -> {s['chunks']} chunks (zhiku: {a['chunks']} for the whole "
                     f"corpus); embed batch {s['embed_batch']}; readers: {s['readers']}")
        lines.append(f"   seed skipped: {', '.join(s['skipped']) or 'none'}; read as plain text: "
                     f"{', '.join(s['read_as_plain_text']) or 'none'}")
    if a["failed"]:
        lines.append(f"zhiku failed files: {a['failed']}")
    if d:
        lines.append(f"d) {d['pages']:,}-page PDF alone, fresh process: {d['seconds']:.1f} s, {d['chunks']} chunks "
                     f"({_rate(d['chunks'], d['seconds']):.2f}/s); peak RSS {d['peak_rss_mb']:.0f} MB "
                     f"(after start-up {d['rss_after_start_mb']:.0f} MB), parse worker {d['worker_peak_rss_mb']:.0f} MB")
    others = fig["machine"]["others"]
    lines.append(f"machine: {fig['machine']['cpus']} CPUs; CPU used by other processes: "
                 + ", ".join(f"{k} {v * 100:.0f}%" for k, v in others.items())
                 + f"; load average at the end {fig['machine']['loadavg_end']}")
    if max(others.values(), default=0) > 0.05:
        lines.append("   the machine was busy with other work during "
                     + ", ".join(k for k, v in others.items() if v > 0.05)
                     + ": that phase's throughput is understated")
    return "\n".join(lines)


# -------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=2000, help="pages in the corpus (default 2000)")
    parser.add_argument("--out", type=Path, help="keep the corpus and indexes here (default: a temporary folder)")
    parser.add_argument("--seed-share", type=float, default=0.25, help="share of the corpus for the seed recipe")
    parser.add_argument("--big-pages", type=int, default=1000, help="pages of the PDF of d); 0 skips d)")
    parser.add_argument("--skip-seed", action="store_true", help="skip c)")
    parser.add_argument("--json", nargs="?", const="-", metavar="FILE", help="write the figures as JSON (- = stdout)")
    parser.add_argument("--child-ingest", nargs=2, metavar=("PDF", "DATA_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child_ingest:
        child_ingest(Path(args.child_ingest[0]), Path(args.child_ingest[1]))
        return 0

    from bench.corpus import CHARS_PER_PAGE, build_corpus

    out = args.out or Path(tempfile.mkdtemp(prefix="zhiku-bench-"))
    out.mkdir(parents=True, exist_ok=True)
    machine = Machine()
    settings = _settings(out / "zhiku-data")
    print(f"building the corpus in {out / 'corpus'} ...", file=sys.stderr)
    shutil.rmtree(out / "corpus", ignore_errors=True)
    corpus = build_corpus(out / "corpus", args.pages)
    fig: dict = {
        "chunk_tokens": settings.chunk_tokens, "batch": settings.embed_batch_size,
        "corpus": {"dir": str(out / "corpus"), "pages": corpus.pages, "files": len(corpus.files),
                   "chars_per_page": CHARS_PER_PAGE, "breakdown": corpus.breakdown()},
        "machine": {"cpus": machine.cpus, "others": {}},
    }
    print("a) zhiku end to end ...", file=sys.stderr)
    fig["zhiku"], services = run_zhiku(out / "corpus", out / "zhiku-data", machine)
    try:
        texts = indexed_texts(services, out / "corpus")
        print(f"b) raw embedding of {len(texts)} chunks ...", file=sys.stderr)
        fig["raw"] = run_raw(services.embedder, texts, settings.embed_batch_size, machine)
        if not args.skip_seed:
            subset, pages = seed_subset(corpus, args.seed_share, out / "seed-corpus")
            print(f"c) seed recipe on {pages} pages ...", file=sys.stderr)
            fig["seed"] = run_seed(subset, out / "seed-qdrant", services.embedder, machine)
            fig["seed"]["pages"] = pages
    finally:
        services.close()
    if args.big_pages:
        big = out / "big" / f"manual_{args.big_pages}.pdf"
        make_big_pdf(big, args.big_pages)
        print(f"d) {args.big_pages}-page PDF in a fresh process ...", file=sys.stderr)
        fig["big_pdf"] = {"pages": args.big_pages, **run_big_pdf(big, out / "big-data")}
    fig["machine"]["others"] = {label: fig[key]["cpu_others"]
                                for label, key in (("a", "zhiku"), ("b", "raw"), ("c", "seed")) if key in fig}
    fig["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
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

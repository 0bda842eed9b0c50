"""The bilingual dictionary's start-up cost in a new process: `python -m bench.dictionary [--rounds 3]`.

Every CLI command and the app's first question read CC-CEDICT's lookup tables before the first keyword is
translated. Two paths are measured, interleaved round by round, each in a fresh Python process: the tables
built from the dictionary (an empty cache directory, as on the first start) and the tables loaded from the
cache a previous process kept. Each process times from before the first lookup to after it (imports
excluded: they are the same on both paths) and the whole process too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

PROBE = """
import json, time
from zhiku.retrieval.translate import Translator
start = time.perf_counter()
groups = Translator().expand_groups("How long is maternity leave?")
print(json.dumps({"lookup": time.perf_counter() - start, "groups": groups}))
"""


def run(cache: str) -> dict:
    start = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", PROBE], env={**os.environ, "XDG_CACHE_HOME": cache},
                         capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    result["process"] = time.perf_counter() - start
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    times: dict[str, dict[str, list[float]]] = {p: {"lookup": [], "process": []} for p in ("built", "kept")}
    answers = set()
    with tempfile.TemporaryDirectory() as kept:
        run(kept)  # the first process keeps the tables for the "kept" path
        for _ in range(args.rounds):
            with tempfile.TemporaryDirectory() as empty:
                for path, cache in (("built", empty), ("kept", kept)):
                    result = run(cache)
                    answers.add(json.dumps(result["groups"], ensure_ascii=False))
                    for key in ("lookup", "process"):
                        times[path][key].append(result[key])
    assert len(answers) == 1, f"the two paths translated differently: {answers}"
    print(f"first lookup in a new process ({args.rounds} rounds, seconds: min / median)")
    for path, by in times.items():
        print(f"  tables {path:5}  first lookup {min(by['lookup']):.2f} / {statistics.median(by['lookup']):.2f}"
              f"   whole process {min(by['process']):.2f} / {statistics.median(by['process']):.2f}")
    ratio = statistics.median(times["built"]["lookup"]) / statistics.median(times["kept"]["lookup"])
    print(f"  first lookup, built / kept (medians): {ratio:.1f}x; same translation on both paths: {answers.pop()}")


if __name__ == "__main__":
    main()

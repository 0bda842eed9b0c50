"""Embedding beside another busy process: `python -m bench.threads [--rounds 3] [--file data/sample/员工手册.pdf]`.

The offline model's engine runs OpenMP threads. By default a waiting OpenMP thread spins, which costs
nothing alone but takes the cores from any other busy process: in the app that is the job worker embedding
while questions are answered, or a second instance on the same machine. zhiku makes waiting threads sleep
(OMP_WAIT_POLICY=PASSIVE, unless the variable is set). Both policies are measured on the same work,
interleaved round by round: one `zhiku ingest` of the file alone, and two of it side by side, each into
a new data dir.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ZHIKU = Path(sys.executable).parent / "zhiku"


def ingest(policy: str, file: Path, copies: int) -> tuple[float, float]:
    """Wall seconds until all copies finished, and their CPU seconds together."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        before = os.times()
        procs = [subprocess.Popen([str(ZHIKU), "ingest", str(file)], stdout=subprocess.DEVNULL,
                                  env={**os.environ, "OMP_WAIT_POLICY": policy,
                                       "ZHIKU_DATA_DIR": str(Path(tmp) / f"data{i}")})
                 for i in range(copies)]
        for proc in procs:
            if proc.wait() != 0:
                raise SystemExit(f"zhiku ingest failed under OMP_WAIT_POLICY={policy}")
        after = os.times()
        return time.perf_counter() - start, (after.children_user + after.children_system
                                             - before.children_user - before.children_system)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--file", type=Path, default=ROOT / "data" / "sample" / "员工手册.pdf")
    args = parser.parse_args()
    runs: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        for copies in (1, 2):
            for policy in ("ACTIVE", "PASSIVE"):
                runs.setdefault((policy, copies), []).append(ingest(policy, args.file, copies))
    print(f"zhiku ingest {args.file.name}, {args.rounds} rounds (seconds: min / median)")
    for (policy, copies), got in runs.items():
        wall, cpu = [w for w, _ in got], [c for _, c in got]
        print(f"  {copies} at once, OMP_WAIT_POLICY={policy:7}  wall {min(wall):6.1f} / {statistics.median(wall):6.1f}"
              f"   cpu {min(cpu):6.1f} / {statistics.median(cpu):6.1f}")
    for copies in (1, 2):
        ratio = (statistics.median(w for w, _ in runs[("ACTIVE", copies)])
                 / statistics.median(w for w, _ in runs[("PASSIVE", copies)]))
        print(f"  {copies} at once: wall ACTIVE / PASSIVE (medians) {ratio:.2f}x")


if __name__ == "__main__":
    main()

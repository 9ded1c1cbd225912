"""Fair under contention: four copies of a small command side by side, against their fair share.

For each command (a small ``train``, a small ``verify``, ``report --quick``) this runs one copy
alone, then four at once, and reports the wall time of the slowest of the four against the fair
share, 4 x (time alone) / cores. A ratio near 1 means the copies shared the machine without
waiting on each other's threads. With ``--compare PYTHONPATH`` the same commands also run against
another install (for example an older commit, ``pip install --target``), measured in the same run.
Prints a table and writes CSV with the machine description. Not a test.

    python benchmarks/contention.py [--copies 4] [--compare /path/to/old/site] [--out results/benchmarks/contention.csv]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

from verify_bench import machine, write_rows

COMMANDS = {
    "train": ["train", "--N", "256", "--R", "2", "--d", "16", "--steps", "300", "--no-analysis", "--quiet"],
    "verify": ["verify", "{model}", "--path", "reference", "--quiet"],
    "report --quick": ["report", "--quick", "--no-training", "--out", "{folder}", "--quiet"],
}


def run(argv: list[str], pythonpath: str | None, folder: str) -> float:
    env = {key: value for key, value in os.environ.items() if key != "OMP_NUM_THREADS"}  # as a user's shell has it
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    fresh = os.path.join(tempfile.mkdtemp(dir=folder), "report")  # report writes a folder that must not exist yet
    argv = [part.format(model=os.path.join(folder, "m.npz"), folder=fresh) for part in argv]
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "georecall.cli", *argv], check=False, capture_output=True, cwd=folder, env=env)
    return time.perf_counter() - started


def measure(name: str, argv: list[str], copies: int, pythonpath: str | None, folder: str) -> dict:
    alone = min(run(argv, pythonpath, folder) for _ in range(2))
    with ThreadPoolExecutor(max_workers=copies) as pool:
        together = max(pool.map(lambda _: run(argv, pythonpath, folder), range(copies)))
    cores = len(os.sched_getaffinity(0))
    fair = copies * alone / cores
    return {"command": name, "install": pythonpath or "this checkout", "copies": copies, "cores": cores,
            "alone_s": round(alone, 2), "together_s": round(together, 2), "fair_share_s": round(fair, 2),
            "ratio_to_fair_share": round(together / fair, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=4)
    parser.add_argument("--compare", default=None, help="PYTHONPATH of another install to measure in the same run")
    parser.add_argument("--out", default="results/benchmarks/contention.csv")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-m", "georecall.cli", "build", "--N", "1024", "--R", "4", "--out", os.path.join(folder, "m.npz")],
                       check=True, capture_output=True)
        for name, argv in COMMANDS.items():
            for pythonpath in ([None] + ([args.compare] if args.compare else [])):
                rows.append(measure(name, argv, args.copies, pythonpath, folder))
                row = rows[-1]
                print(f"{row['command']:>15} ({row['install'][-30:]}): alone {row['alone_s']} s, {args.copies} together "
                      f"{row['together_s']} s, fair share {row['fair_share_s']} s, ratio {row['ratio_to_fair_share']}", flush=True)
    for row in rows:
        row["machine"] = machine()
    write_rows(rows, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Issue 21's goals measured as a new user would run them: ``georecall build`` then ``georecall verify``.

Each command runs as its own child process, so its wall time and peak memory are its own. For
chains and chain-of-thought the baseline is the bounded reference of this same checkout, measured
in the same run on a seeded sample (``--path reference --max-queries``) and extrapolated to every
query (it says so: ``baseline_extrapolated``). Prints a table and writes CSV with the machine.
Not a test.

    python benchmarks/goals_bench.py [--cases single_hop_2_20 cot_4 chains_3] [--out results/benchmarks/goals.csv]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

from verify_bench import machine, write_rows

CASES = {
    "single_hop_2_20": ["--N", "1048576", "--R", "8"],  # goal 1
    "single_hop_2_24": ["--N", "16777216", "--R", "8"],  # goal 2 (about 7 GB of float16 on disk: opt in)
    "cot_4": ["--construction", "cot", "--hops", "4", "--N", "4096", "--R", "4"],  # goal 3
    "chains_3": ["--construction", "chains", "--hops", "3", "--N", "4096", "--R", "4"],  # goal 3
}
BASELINE_SAMPLE = 20_000  # queries per depth or chain length for the reference baseline


# The child records its own high-water mark (VmHWM) as it exits. wait4's ru_maxrss is no use here:
# Linux carries the parent's resident memory at spawn into the child's (a 2 GB parent made
# `python -c pass` report 2,075 MB), so a large parent, such as pytest, would inflate every figure.
PEAK_WRAPPER = """import atexit, sys
peak = sys.argv.pop(1)
def record():
    with open("/proc/self/status") as status, open(peak, "w") as out:
        out.write(next(line.split()[1] for line in status if line.startswith("VmHWM:")))
atexit.register(record)
from georecall.cli import main
sys.exit(main(sys.argv[1:]))
"""


def timed(argv: list[str], folder: str) -> tuple[float, float, str]:
    """(wall seconds, peak RSS in MB, stdout) of ``georecall ARGV`` in a child process; raises if it fails."""
    peak = os.path.join(folder, f".peak-{os.getpid()}")
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", PEAK_WRAPPER, peak, *argv], cwd=folder, stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
    out = child.stdout.read()
    if child.wait() != 0:
        raise RuntimeError(f"georecall {' '.join(argv)} exited with {child.returncode}")
    seconds = time.perf_counter() - started
    with open(peak) as recorded:
        peak_kb = int(recorded.read())
    os.unlink(peak)
    return seconds, peak_kb / 1024, out


def measure(name: str, folder: str) -> dict:
    path = os.path.join(folder, f"{name}.npz")
    build_s, build_mb, _ = timed(["build", *CASES[name], "--out", path, "--quiet", "--force"], folder)
    verify_s, verify_mb, out = timed(["verify", path, "--json", "--quiet"], folder)
    report = json.loads(out)
    row = {"case": name, "build_s": round(build_s, 2), "build_peak_mb": round(build_mb), "verify_s": round(verify_s, 2),
           "verify_peak_mb": round(verify_mb), "queries": report["queries"], "exhaustive": report["exhaustive"],
           "robust": report["robust"], "exact_recall": report["exact_recall"], "path": report["details"].get("path"),
           "baseline_s": "", "baseline_extrapolated": "", "speedup": ""}
    if not name.startswith("single_hop"):
        base_s, _, base_out = timed(["verify", path, "--json", "--quiet", "--path", "reference", "--max-queries", str(BASELINE_SAMPLE)], folder)
        base = json.loads(base_out)
        extrapolated = base_s * report["queries"] / base["queries"]
        row.update(baseline_s=round(extrapolated, 1), baseline_extrapolated=base["queries"] < report["queries"],
                   speedup=round(extrapolated / verify_s, 1))
    return row


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", nargs="+", choices=sorted(CASES), default=["single_hop_2_20", "cot_4", "chains_3"])
    parser.add_argument("--out", default="results/benchmarks/goals.csv")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for name in args.cases:
            rows.append({**measure(name, folder), "machine": machine()})
            print({k: v for k, v in rows[-1].items() if k != "machine"}, flush=True)
    write_rows(rows, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

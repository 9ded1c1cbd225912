"""Issue 21, goal 2: single hop from N = 2^16 to 2^24 (R = 8), built and verified as a new user would.

For each N: ``georecall build`` then the default ``georecall verify`` (every query), each in its own
child process with its wall time and peak RSS (``goals_bench.timed``); the file's size and the
disk it takes (the zero rows of W_U are holes). Writes a CSV, and a PNG of peak memory and of time
per query against N, with the machine. The file is deleted after each size. Refuses up front when
the folder's disk cannot hold the largest file. Not a test: about 4 minutes at the default sizes.

    python benchmarks/scale_bench.py [--log2-N 16 18 20 22 24] [--R 8] [--out results/benchmarks/scale.csv]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile

from goals_bench import timed
from verify_bench import machine, write_rows

GOAL_SECONDS, GOAL_PEAK_MB = 180.0, 6000.0  # build then verify at 2^24, together


def file_bytes(N: int, R: int) -> int:
    """The .npz's size for the binary block construction: W_E and W_U as float16, b_U, the int64 facts."""
    d0 = max(1, (N - 1).bit_length())
    D = R * d0 + R + d0
    return 2 * (N + R) * D + 2 * D * N + 8 * N + 8 * R * N


def measure(N: int, R: int, folder: str) -> dict:
    path = os.path.join(folder, f"single_hop_{N}.npz")
    build_s, build_mb, _ = timed(["build", "--N", str(N), "--R", str(R), "--out", path, "--quiet", "--force"], folder)
    status = os.stat(path)
    verify_s, verify_mb, out = timed(["verify", path, "--json", "--quiet"], folder)
    os.unlink(path)
    report = json.loads(out)
    return {"N": N, "R": R, "queries": report["queries"], "exhaustive": report["exhaustive"], "exact_recall": report["exact_recall"],
            "certified": report["details"].get("certified"), "file_mb": round(status.st_size / 2**20),
            "disk_mb": round(getattr(status, "st_blocks", 0) * 512 / 2**20), "build_s": round(build_s, 2), "build_peak_mb": round(build_mb),
            "verify_s": round(verify_s, 2), "verify_peak_mb": round(verify_mb), "total_s": round(build_s + verify_s, 2),
            "verify_us_per_query": round(1e6 * verify_s / report["queries"], 3)}


def plot(rows: list[dict], path: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    N = [row["N"] for row in rows]
    figure, (memory, rate) = plt.subplots(1, 2, figsize=(10, 4))
    for key, label in (("verify_peak_mb", "verify, peak RSS"), ("build_peak_mb", "build, peak RSS"), ("file_mb", "file size")):
        memory.plot(N, [row[key] for row in rows], marker="o", label=label)
    memory.axhline(GOAL_PEAK_MB, color="grey", linestyle="--", label="goal at 2^24: 6 GB")
    memory.set(xscale="log", yscale="log", xlabel="N (subjects)", ylabel="MB", title=f"Memory, R = {rows[0]['R']}")
    memory.legend(fontsize=8)
    rate.plot(N, [row["verify_us_per_query"] for row in rows], marker="o", label="verify (load included)")
    rate.set(xscale="log", ylim=(0, None), xlabel="N (subjects)", ylabel="µs per query", title="Time per query")
    rate.legend(fontsize=8)
    figure.suptitle(machine(), fontsize=7)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f"wrote {path}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--log2-N", type=int, nargs="+", default=[16, 18, 20, 22, 24], choices=range(4, 25), metavar="K")
    parser.add_argument("--R", type=int, default=8)
    parser.add_argument("--folder", default=None, help="where the files are written (default: a temporary folder)")
    parser.add_argument("--out", default="results/benchmarks/scale.csv")
    args = parser.parse_args()
    folder = args.folder or tempfile.mkdtemp(prefix="georecall-scale-")
    largest = file_bytes(2 ** max(args.log2_N), args.R)
    free = shutil.disk_usage(folder).free
    if largest > free:
        print(f"--folder {folder}: the file at N = 2^{max(args.log2_N)} needs {largest / 2**30:.1f} GiB, "
              f"and the disk has {free / 2**30:.1f} GiB free", file=sys.stderr)
        return 2
    rows = []
    try:
        for k in sorted(args.log2_N):
            rows.append(measure(2**k, args.R, folder))
            print(rows[-1], flush=True)
    finally:
        if args.folder is None:
            shutil.rmtree(folder, ignore_errors=True)
    for row in rows:
        if row["N"] == 2**24:
            met = row["total_s"] <= GOAL_SECONDS and max(row["build_peak_mb"], row["verify_peak_mb"]) <= GOAL_PEAK_MB
            print(f"goal 2 (2^24: build + verify <= {GOAL_SECONDS:.0f} s, peak <= {GOAL_PEAK_MB:.0f} MB): "
                  f"{row['total_s']} s, {max(row['build_peak_mb'], row['verify_peak_mb'])} MB: {'met' if met else 'NOT met'}")
    write_rows([{**row, "machine": machine()} for row in rows], args.out)
    plot(rows, os.path.splitext(args.out)[0] + ".png")
    return 0


if __name__ == "__main__":
    sys.exit(main())

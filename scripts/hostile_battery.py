"""A battery of hostile command lines against ``georecall``: bad files, bad options, links, devices, signals.

    python scripts/hostile_battery.py --out results/hostile_battery.json [--workers 2]

Every run is a fresh ``python -m georecall.cli`` process with a 60 s limit. A run passes when it
exits 0, 1 or 2 (130 or 143 after a signal we sent), prints no traceback, answers bad input with
one line, stays under 60 s and 1.5 GiB, and leaves every file we planted beside it as it was. The
JSON gives the counts (runs, exits, failures by kind) and every failing run, so that a regression
names its command line.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

TIME_LIMIT_S = 60.0
MEMORY_LIMIT_KB = int(1.5 * 2**20)


def georecall(*argv: str) -> list:
    return [sys.executable, "-m", "georecall.cli", *argv]


def digest(path: Path) -> str | None:
    if path.is_symlink():
        return "link:" + os.readlink(path)
    if path.is_dir():
        return "dir:" + ",".join(sorted(f"{p.name}={digest(p)}" for p in path.iterdir()))
    if not path.exists():
        return None
    if not path.is_file():
        return "special"
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Battery:
    def __init__(self, root: Path):
        self.root = root
        self.cases: list[dict] = []
        self.counter = itertools.count()

    def add(self, kind: str, argv: list, protect: list = (), signal_after: float | None = None, expect: tuple = (0, 1, 2),
            sig: int = signal.SIGTERM, out: Path | None = None):
        self.cases.append({"kind": kind, "argv": argv, "protect": [str(p) for p in protect], "signal_after": signal_after,
                           "expect": expect, "signal": int(sig), "out": str(out) if out is not None else None})

    def path(self, name: str) -> Path:
        return self.root / f"{next(self.counter)}-{name}"


def run_case(case: dict) -> dict:
    protected = {p: digest(Path(p)) for p in case["protect"]}
    started = time.monotonic()
    process = subprocess.Popen(case["argv"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=case.get("cwd"),
                               env={**os.environ, "OMP_NUM_THREADS": "1"})
    if case["signal_after"] is not None:
        timer = threading.Timer(case["signal_after"], lambda: process.poll() is None and process.send_signal(case["signal"]))
        timer.start()
    try:
        out, err = process.communicate(timeout=TIME_LIMIT_S + 10)
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
    seconds = time.monotonic() - started
    usage = _child_usage(process)
    err_text = err.decode(errors="replace")
    result = {"kind": case["kind"], "argv": case["argv"][3:], "exit": process.returncode, "seconds": round(seconds, 2), "max_rss_kb": usage}
    problems = []
    allowed = set(case["expect"]) | ({143, 130} if case["signal_after"] is not None else set())
    if process.returncode not in allowed:
        problems.append(f"exit {process.returncode}")
    if "Traceback" in err_text:
        problems.append("traceback")
    if process.returncode == 2 and len(err_text.strip().splitlines()) != 1:
        problems.append("bad input not one line")
    if seconds > TIME_LIMIT_S:
        problems.append("over 60 s")
    if usage and usage > MEMORY_LIMIT_KB:
        problems.append("over 1.5 GiB")
    lost = [p for p, before in protected.items() if digest(Path(p)) != before]
    if lost:
        problems.append(f"changed {lost}")
    # a staged folder is named after its target; atomic files' temporaries (.georecall-*.part) are not,
    # so runs side by side would see each other's: those are counted once, after every run (main)
    out = Path(case["out"]) if case["out"] else None
    leftovers = [p.name for p in out.parent.glob(f".{out.name}-*.part*")] if out else []
    if leftovers:
        problems.append(f"staging left behind {leftovers}")
    result["problems"] = problems
    if problems:
        result["stderr"] = err_text[-400:]
    return result


_usage_lock = threading.Lock()


def _child_usage(process) -> int | None:
    """Peak resident memory of the child in KiB (Linux: /proc is gone by now, so we read it via wait4 where we can)."""
    return getattr(process, "max_rss_kb", None)


class Popen(subprocess.Popen):
    """subprocess.Popen that records the child's peak memory from wait4."""

    def _try_wait(self, wait_flags):
        try:
            pid, status, usage = os.wait4(self.pid, wait_flags)
        except ChildProcessError:
            pid, status = self.pid, 0
        else:
            if pid == self.pid:
                self.max_rss_kb = usage.ru_maxrss
        return pid, status


subprocess.Popen = Popen  # every run above goes through it


def make_files(b: Battery) -> dict:
    """A valid small file of each kind, and the hostile variants written beside them."""
    from georecall.constructions import build_construction
    from georecall.formats import save_model, save_model_as
    from georecall.theory import Instance

    instance = Instance.random(16, 2, 0)
    base = build_construction("block", instance)
    cot = build_construction("cot", instance, hops=3)
    files = {}
    files["good"] = b.root / "good.npz"
    save_model(files["good"], base.weights, instance, base.spec)
    files["cot"] = b.root / "cot.npz"
    save_model(files["cot"], cot.weights, instance, cot.spec)
    files["st"] = b.root / "good.safetensors"
    save_model_as(files["st"], "safetensors", base.weights, instance, base.spec)
    files["tl"] = b.root / "good.tl.safetensors"
    save_model_as(files["tl"], "transformer-lens", base.weights, instance, base.spec)
    with np.load(files["good"]) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays["meta"]))

    def npz(name, meta_text=None, **changes):
        path = b.root / f"{name}.npz"
        new = dict(arrays, **changes)
        if meta_text is not None:
            new["meta"] = np.array(meta_text)
        np.savez(path, **new)
        files[name] = path

    npz("deep_meta", '{"a":' * 100_000 + "1" + "}" * 100_000)
    npz("huge_int_meta", json.dumps({**meta, "N": 10**5000}) if False else json.dumps(meta)[:-1] + ', "x": ' + "9" * 5000 + "}")
    npz("layers_1e9", json.dumps({**meta, "n_layers": 10**9}))
    npz("layers_float", json.dumps({**meta, "n_layers": 1e9}))
    npz("claims_40_hops", json.dumps({**meta, "query_kinds": ["multi_hop"], "extra": {**meta["extra"], "hops": 40}}))
    npz("nan_array", W_U=np.full_like(arrays["W_U"], np.nan))
    npz("complex_array", W_E=arrays["W_E"].astype(np.complex128))
    npz("int_array", W_E=arrays["W_E"].astype(np.int64))
    npz("object_free_wrong_shape", W_U=arrays["W_U"][:, :3])
    npz("bad_facts", facts=np.zeros_like(arrays["facts"]))
    npz("spec_1e300", json.dumps({**meta, "extra": {**meta["extra"], "spec": {**meta["extra"]["spec"], "bits_per_coordinate": 1e300}}}))
    npz("spec_lies", json.dumps({**meta, "extra": {**meta["extra"], "spec": {**meta["extra"]["spec"], "hops": 2}}}))
    npz("no_spec", json.dumps({**meta, "extra": {k: v for k, v in meta["extra"].items() if k != "spec"}}))
    with np.load(files["cot"]) as data:
        cot_arrays = {k: data[k] for k in data.files}
    cot_meta = json.loads(str(cot_arrays["meta"]))
    path = b.root / "cot100.npz"
    np.savez(path, **dict(cot_arrays, meta=np.array(json.dumps({**cot_meta, "extra": {**cot_meta["extra"], "max_hops": 100}}))))
    files["cot100"] = path
    truncated = b.root / "truncated.npz"
    truncated.write_bytes(files["good"].read_bytes()[:500])
    files["truncated"] = truncated
    bomb = b.root / "bomb.npz"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as archive:
        header = b"\x93NUMPY\x01\x00" + struct.pack("<H", 118) + b"{'descr': '<f8', 'fortran_order': False, 'shape': (100000, 100000), }".ljust(117) + b"\n"
        archive.writestr("W_E.npy", header + b"\0" * 1000)
        archive.writestr("meta.npy", b"\0" * 10)
    files["bomb"] = bomb
    (b.root / "text.npz").write_text("not a zip at all")
    files["text"] = b.root / "text.npz"
    # safetensors variants
    raw = files["st"].read_bytes()
    (length,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + length])

    def st(name, text: bytes):
        path = b.root / f"{name}.safetensors"
        path.write_bytes(struct.pack("<Q", len(text)) + text + raw[8 + length :])
        files[name] = path

    st("st_utf16", json.dumps(header).encode("utf-16"))
    first = next(k for k in header if k != "__metadata__")
    st("st_dup_key", json.dumps(header)[:-1].encode() + b', "' + first.encode() + b'": ' + json.dumps(header[first]).encode() + b"}")
    st("st_dtype_list", json.dumps({**header, first: {**header[first], "dtype": ["F64"]}}).encode())
    st("st_dtype_dict", json.dumps({**header, first: {**header[first], "dtype": {"x": 1}}}).encode())
    st("st_bool_shape", json.dumps({**header, first: {**header[first], "shape": [True] * len(header[first]["shape"])}}).encode())
    st("st_deep", (b'{"a":' * 50_000) + b"1" + b"}" * 50_000)
    st("st_huge_int", json.dumps(header)[:-1].encode() + b', "x": ' + b"9" * 5000 + b"}")
    rawtl = files["tl"].read_bytes()
    (length_tl,) = struct.unpack("<Q", rawtl[:8])
    header_tl = json.loads(rawtl[8 : 8 + length_tl])
    config = json.loads(header_tl["__metadata__"]["transformer_lens_config"])
    for name, value in (("abc", "abc"), ("null", None), ("list", [2]), ("nan", "NaN")):
        bad = {**header_tl, "__metadata__": {**header_tl["__metadata__"], "transformer_lens_config": json.dumps({**config, "attn_scale": value})}}
        text = json.dumps(bad).encode()
        path = b.root / f"tl_scale_{name}.safetensors"
        path.write_bytes(struct.pack("<Q", len(text)) + text + rawtl[8 + length_tl :])
        files[f"tl_scale_{name}"] = path
    for name, value in (("n_ctx_neg", -1), ("n_ctx_zero", 0), ("layers_big", 10**9)):
        key = "n_layers" if name == "layers_big" else "n_ctx"
        bad = {**header_tl, "__metadata__": {**header_tl["__metadata__"], "transformer_lens_config": json.dumps({**config, key: value})}}
        text = json.dumps(bad).encode()
        path = b.root / f"tl_{name}.safetensors"
        path.write_bytes(struct.pack("<Q", len(text)) + text + rawtl[8 + length_tl :])
        files[f"tl_{name}"] = path
    (b.root / "deep_spec.json").write_text('{"a":' * 100_000 + "1" + "}" * 100_000)
    files["deep_spec"] = b.root / "deep_spec.json"
    (b.root / "huge_spec.json").write_text('{"N": ' + "9" * 5000 + "}")
    files["huge_spec"] = b.root / "huge_spec.json"
    return files


def build_battery(root: Path) -> Battery:
    b = Battery(root)
    files = make_files(b)
    hostile_files = [name for name in files if name not in ("good", "cot", "st", "tl")]
    # inputs that are not files at all, or nothing: a FIFO (opening it would block), a device, a folder, links
    special = {"in_fifo": b.path("in.npz"), "in_folder": b.path("in_dir.npz"), "in_empty": b.path("empty.npz"),
               "in_broken_link": b.path("broken.npz"), "in_link_to_good": b.path("good_link.npz"), "in_device": Path("/dev/zero")}
    os.mkfifo(special["in_fifo"])
    special["in_folder"].mkdir()
    special["in_empty"].write_bytes(b"")
    special["in_broken_link"].symlink_to(b.root / "nothing-here")
    special["in_link_to_good"].symlink_to(files["good"])
    files.update(special)
    hostile_files += list(special)
    # every command that reads a file, on every hostile file
    for name in hostile_files:
        path = str(files[name])
        for verify_path in ("auto", "certify", "fast", "reference", "torch", "exact"):
            b.add(f"file:{name}:verify-{verify_path}", georecall("verify", path, "--path", verify_path, "--json"))
        b.add(f"file:{name}:compare", georecall("compare", path))
        b.add(f"file:{name}:compare-p2", georecall("compare", path, "--precision", "2", "--json"))
        for container in ("npz", "safetensors", "transformer-lens"):
            b.add(f"file:{name}:export-{container}", georecall("export", path, "--to", container, str(b.path("exported"))))
    for path in ("cot100", "claims_40_hops"):
        b.add("file:hops", georecall("verify", str(files[path]), "--hops", "100", "--max-queries", "10"))
    # out-of-range options, command by command
    bad_ints = ["0", "-1", "1e9", "10" + "0" * 30, "2" * 5000, "nan", "", "abc", str(2**40), "1.5", "0x10", "+3", "\u0661\u0662"]
    bad_reals = ["nan", "inf", "-inf", "-1", "0", "1e308", "abc", ""]
    for value in bad_ints:
        for option in ("--N", "--R", "--hops", "--precision", "--seed", "--cot-steps", "--d"):
            b.add("option:build", georecall("build", option, value, "--out", str(b.path("o.npz"))))
        for option in ("--N", "--R", "--d", "--d-mlp", "--instances", "--steps", "--batch-size", "--seed", "--transfer-steps"):
            b.add("option:train", georecall("train", option, value, "--no-analysis", "--steps", "1"))
        for option in ("--N", "--R"):
            b.add("option:sizes", georecall("sizes", option, value))
            b.add("option:threshold", georecall("threshold", option, value, *(["--R", "1"] if option == "--N" else ["--N", "16"])))
        for option in ("--d", "--R", "--max-hops", "--precision"):
            b.add("option:tradeoff", georecall("tradeoff", "--d", "16", "--R", "2", option, value))
        for option in ("--N", "--R", "--hops", "--precision", "--d"):
            b.add("option:bounds", georecall("bounds", "--N", "16", "--R", "2", option, value))
        for option in ("--max-queries", "--max-listed", "--max-exact", "--hops", "--seed"):
            b.add("option:verify", georecall("verify", str(files["good"]), option, value))
        b.add("option:compare", georecall("compare", str(files["good"]), "--precision", value))
        b.add("option:threshold-seeds", georecall("threshold", "--N", "16", "--R", "1", "--seeds", value))
        b.add("option:bounds-hps", georecall("bounds", "--N", "16", "--R", "2", "--hops", "4", "--cot", "--hops-per-step", value))
        b.add("option:sweep", georecall("sweep", "--N", "16", "--R", "1", "--at-N", "16", "--at-R", "1", "--seeds", "0", "--steps", "5",
                                        "--d-max", value, "--out", str(b.path("sweep"))))
    sweep_small = ["sweep", "--N", "8", "--R", "--seeds", "0", "--d-max", "2", "--steps", "5"]
    for option in ("--workers", "--cpus-per-task", "--gpus-per-task"):
        for value in ("0", "-1", "abc", "nan", "1e9", "10" + "0" * 30):
            b.add("option:sweep-executor", georecall(*sweep_small, "--executor", "ray", option, value, "--out", str(b.path("sweep"))))
    for extra in (["--workers", "2"], ["--address", "auto"], ["--executor", "dask"], ["--gpus-per-task", "1"]):
        b.add("option:sweep-executor", georecall(*sweep_small, *extra, "--out", str(b.path("sweep"))))
    for value in bad_reals:
        b.add("option:verify-budget", georecall("verify", str(files["good"]), "--memory-budget-mb", value))
        for option in ("--lr", "--weight-decay", "--init-scale", "--stop-margin"):
            b.add("option:train-real", georecall("train", option, value, "--N", "16", "--R", "1", "--d", "4", "--steps", "1", "--no-analysis"))
        for command in ("build", "sizes", "threshold"):
            extra = ["--codebook", "rademacher", "--out", str(b.path("d.npz"))] if command == "build" else ["--N", "16", "--R", "1"]
            b.add("option:delta", georecall(command, "--delta", value, *extra))
        b.add("option:bounds-delta", georecall("bounds", "--N", "16", "--R", "2", "--delta", value))
    for plot in ("t.json", "t", "t.PNG.json", "/nonexistent/dir/t.png"):
        b.add("option:plot", georecall("tradeoff", "--d", "16", "--R", "2", "--plot", str(root / plot) if not plot.startswith("/") else plot))
    for argv in (["train", "--freeze", "everything"], ["train", "--dtype", "float16"], ["train", "--device", "tpu"],
                 ["verify", str(files["good"]), "--path", "torch", "--device", "cuda"], ["export", str(files["good"]), "--to", "onnx", "x"],
                 ["bounds", "--N", "16", "--R", "2", "--chains", "some"], ["check", "--json", "extra"]):
        b.add("option:choices", georecall(*argv))
    b.add("option:train-huge", georecall("train", "--N", "16", "--R", "1000000", "--no-analysis"))
    b.add("option:train-instances", georecall("train", "--instances", "1000000000", "--no-analysis"))
    b.add("option:build-huge", georecall("build", "--N", str(2**40), "--R", "8", "--out", str(b.path("h.npz"))))
    b.add("option:sizes-huge", georecall("sizes", "--N", str(2**40)))
    b.add("option:threshold-huge", georecall("threshold", "--N", str(2**40)))
    # outputs that must not be replaced: links, devices, FIFOs, folders, files without --force
    targets = {}
    keep = b.path("keep.txt")
    keep.write_text("a user's file")
    link_to_file = b.path("link_to_file")
    link_to_file.symlink_to(keep)
    folder = b.path("folder")
    folder.mkdir()
    (folder / "keep.txt").write_text("a user's folder")
    link_to_folder = b.path("link_to_folder")
    link_to_folder.symlink_to(folder)
    fifo = b.path("fifo")
    os.mkfifo(fifo)
    targets.update(keep=keep, link_to_file=link_to_file, folder=folder, link_to_folder=link_to_folder, fifo=fifo)
    protect = [keep, link_to_file, folder, link_to_folder, fifo]
    device = b.path("null_device")
    try:  # our own character device (1, 3), like /dev/null: a regression here must not touch the system's
        os.mknod(device, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    except PermissionError:
        print("not root: the device-node targets are left out", file=sys.stderr)
    else:
        targets["device"] = device
        protect.append(device)
    for name, target in targets.items():
        for force in ([], ["--force"]):
            cases = {
                "build": ["build", "--N", "16", "--R", "2", "--out"],
                "export": ["export", str(files["good"]), "--to", "safetensors"],
                "train": ["train", "--N", "16", "--R", "1", "--d", "4", "--steps", "5", "--no-analysis", "--out"],
                "sweep": ["sweep", "--N", "16", "--R", "1", "--at-N", "16", "--at-R", "1", "--seeds", "0", "--d-max", "2", "--steps", "5", "--out"],
                "report": ["report", "--quick", "--no-training", "--out"],
                "tradeoff": ["tradeoff", "--d", "16", "--R", "2", "--plot"],
                "tradeoff-png": ["tradeoff", "--d", "16", "--R", "2", "--plot"],
            }
            for command, argv in cases.items():
                out, guarded = target, protect
                if name == "keep" and force:  # --force may replace a regular file: each case gets its own copy
                    out = b.path("keep-copy.txt")
                    out.write_text("a user's file")
                    replaceable = command in ("build", "export")
                    guarded = [p for p in protect if p != keep] + ([] if replaceable else [out])
                out = Path(f"{out}.png") if command == "tradeoff-png" else out
                b.add(f"out:{name}:{command}", georecall(*argv, str(out), *force), guarded, out=out)
    # a previous run replaced with --force, and a kill (SIGTERM, SIGINT) while the replacement is staged
    for sig, index in itertools.product((signal.SIGTERM, signal.SIGINT), range(3)):
        run = b.path("run")
        subprocess.run(georecall("train", "--N", "16", "--R", "1", "--d", "4", "--steps", "5", "--no-analysis", "--out", str(run)),
                       capture_output=True)  # exit 1: 5 steps do not memorise; the folder is what matters
        assert (run / "config.json").exists(), run
        b.add(f"signal:{sig.name}:train", georecall("train", "--N", "64", "--R", "2", "--d", "8", "--steps", "100000000",
                                                    "--stop-margin", "1000000", "--out", str(run), "--force"),
              [run], signal_after=2.0 + index, sig=sig, out=run)
        sweep = b.path("sweep")
        b.add(f"signal:{sig.name}:sweep", georecall("sweep", "--N", "64", "--R", "--seeds", "0", "1", "--d-max", "64", "--out", str(sweep)),
              [], signal_after=2.0 + index, sig=sig, out=sweep)
        report = b.path("report")
        subprocess.run(georecall("report", "--quick", "--no-training", "--out", str(report)), check=True, capture_output=True)
        b.add(f"signal:{sig.name}:report", georecall("report", "--quick", "--out", str(report), "--force"), [report],
              signal_after=1.0 + index, sig=sig, out=report)  # with training: long enough to be stopped midway
    return b


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=None, help="write the counts and every failing run as JSON here")
    parser.add_argument("--workers", type=int, default=2, help="runs side by side (default 2)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="georecall-battery-") as folder:
        battery = build_battery(Path(folder))
        started = time.monotonic()
        signal_cases = [c for c in battery.cases if c["signal_after"] is not None]
        other = [c for c in battery.cases if c["signal_after"] is None]
        print(f"{len(battery.cases):,} runs", file=sys.stderr, flush=True)
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            results = []
            for i, result in enumerate(pool.map(run_case, other), 1):
                results.append(result)
                if i % 100 == 0:
                    print(f"{i:,}/{len(battery.cases):,} runs, {sum(bool(r['problems']) for r in results)} failing", file=sys.stderr, flush=True)
        results += [run_case(case) for case in signal_cases]  # one at a time: the kill must land mid-run
        stray = sorted(str(p.relative_to(folder)) for p in Path(folder).rglob("*.part*"))  # every run has ended: none may remain
    failing = [r for r in results if r["problems"]]
    summary = {
        "runs": len(results),
        "exits": {str(code): sum(r["exit"] == code for r in results) for code in sorted({r["exit"] for r in results})},
        "failing": len(failing) + bool(stray),
        "stray_partial_files": stray,
        "tracebacks": sum("traceback" in r["problems"] for r in results),
        "internal_errors": sum(r["exit"] == 3 for r in results),
        "over_60_s": sum("over 60 s" in r["problems"] for r in results),
        "over_1_5_GiB": sum("over 1.5 GiB" in r["problems"] for r in results),
        "files_changed": sum(any(p.startswith("changed") for p in r["problems"]) for r in results),
        "slowest_s": max(r["seconds"] for r in results),
        "largest_rss_MiB": round(max(r["max_rss_kb"] or 0 for r in results) / 1024, 1),
        "seconds": round(time.monotonic() - started, 1),
        "failing_runs": failing[:50],
    }
    print(json.dumps({k: v for k, v in summary.items() if k != "failing_runs"}))
    for r in failing[:20]:
        print(f"FAIL {r['kind']}: {' '.join(r['argv'])[:160]} -> {r['problems']} {r.get('stderr', '')[-160:]!r}", file=sys.stderr)
    if args.out:
        with open(args.out, "w") as handle:
            json.dump(summary, handle, indent=1)
    return 0 if not failing and not stray else 1


if __name__ == "__main__":
    sys.exit(main())

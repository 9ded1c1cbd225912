"""The layout says what each folder holds (issue 22): imports point down, no cycles, one purpose per folder.

Layers, bottom up: theory (the paper's objects); verify (the proof engine) and formats (file
formats), each on theory alone; constructions and bounds; experiments; the georecall package (the
command line, the report, the plugin). A module may import its own folder and the folders below
it, never beside or above. Read with the standard library's ast and graphlib.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FOLDERS = {"theory": "theory", "verify": "verify", "formats": "formats", "constructions": "constructions", "bounds": "bounds",
           "experiments": "experiments", "georecall": "georecall"}
ALLOWED = {
    "theory": {"theory"},
    "verify": {"theory", "verify"},
    "formats": {"theory", "formats"},
    "constructions": {"theory", "verify", "constructions"},
    "bounds": {"theory", "formats", "bounds"},
    "experiments": {"theory", "verify", "formats", "constructions", "bounds", "experiments"},
    "georecall": set(FOLDERS),
}
LINE_LIMIT = 350
# files over the limit that are one idea read best whole, with the reason (the closing note repeats it)
LONG_FILES: dict[str, str] = {}


def modules() -> dict[str, Path]:
    """georecall.<folder>.<name> -> file, for every module of the installed package."""
    found = {}
    for folder, path in FOLDERS.items():
        for file in sorted((ROOT / path).rglob("*.py")):
            relative = file.relative_to(ROOT / path).with_suffix("")
            parts = [p for p in relative.parts if p != "__init__"]
            name = ".".join(["georecall"] + ([folder] if folder != "georecall" else []) + parts)
            found[name] = file
    return found


def imports_of(file: Path, name: str) -> set[str]:
    """Every georecall module ``file`` imports, at any depth of the file (lazy imports count)."""
    tree = ast.parse(file.read_text())
    package = name if file.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("georecall")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if base.startswith("georecall"):
                out.add(base)
                out |= {f"{base}.{a.name}" for a in node.names}  # "from georecall.verify import run" names a module
    return out


def folder_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in FOLDERS and parts[1] != "georecall" else "georecall"


def graph() -> dict[str, set[str]]:
    every = modules()
    return {name: {m for m in imports_of(file, name) if m in every and m != name} for name, file in every.items()}


def test_every_import_points_down():
    wrong = [f"{module} imports {target}" for module, targets in graph().items() for target in sorted(targets)
             if folder_of(target) not in ALLOWED[folder_of(module)]]
    assert not wrong, wrong


def test_there_is_no_import_cycle():
    # a package imports its own submodules by design; every other edge must form a DAG
    edges = {m: {t for t in ts if not t.startswith(m + ".")} for m, ts in graph().items()}
    graphlib.TopologicalSorter(edges).prepare()  # raises CycleError naming the cycle


def test_the_checks_can_fail():
    with pytest.raises(graphlib.CycleError):
        graphlib.TopologicalSorter({"a": {"b"}, "b": {"a"}}).prepare()
    assert "theory" not in ALLOWED["theory"] - {"theory"} and folder_of("georecall.verify.fast") == "verify"
    assert "formats" not in ALLOWED["verify"] and "verify" not in ALLOWED["formats"]


def test_each_folder_says_its_one_purpose_in_its_first_sentence():
    for folder, path in FOLDERS.items():
        for init in [ROOT / path / "__init__.py"] + sorted((ROOT / path).glob("*/__init__.py")):
            doc = ast.get_docstring(ast.parse(init.read_text()))
            assert doc and doc.split("\n")[0].rstrip().endswith((".", ":")), f"{init.relative_to(ROOT)} has no one-sentence purpose"


def test_no_file_is_over_the_line_limit_unless_it_reads_better_whole():
    long = {str(file.relative_to(ROOT)): len(file.read_text().splitlines()) for file in modules().values()}
    over = {name: n for name, n in long.items() if n > LINE_LIMIT and name not in LONG_FILES}
    assert not over, over
    assert all(long.get(name, 0) > LINE_LIMIT for name in LONG_FILES), "an exception no longer needed"


def test_theory_holds_the_papers_objects_only():
    assert {file.stem for file in (ROOT / "theory").glob("*.py")} <= {
        "__init__", "checks", "instance", "queries", "weights", "arrays", "model", "spec", "geometry", "search", "describe"}

"""docs/index.md must stay true: every listed file exists, every listed test exists."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INDEX = (ROOT / "docs" / "index.md").read_text()
REFERENCES = set(re.findall(r"`([\w./-]+\.(?:py|md|json))(?:::(\w+))?`", INDEX))


def test_the_map_lists_enough_to_be_useful():
    tests = {name for _, name in REFERENCES if name}
    assert len(tests) >= 30
    for row in ("Theorem 1", "Theorem 2", "Theorem 3", "Theorem 4", "Theorem 5", "Theorem 6", "Certificate",
                "B1", "B2", "B3", "B4", "B5", "B6", "B7", "C1:", "C2:", "C3:", "C4:", "C5:", "C6:"):
        assert f"| {row}" in INDEX, row


def test_every_listed_file_exists():
    missing = sorted(path for path, _ in REFERENCES if not (ROOT / path).is_file())
    assert not missing, f"docs/index.md lists missing files: {missing}"


def test_every_listed_test_exists():
    missing = []
    for path, name in REFERENCES:
        if name and not re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M):
            missing.append(f"{path}::{name}")
    assert not missing, f"docs/index.md lists missing tests: {missing}"


def test_the_checker_notices_a_missing_test():
    fake = "`tests/test_bounds.py::test_that_does_not_exist`"
    path, name = re.findall(r"`([\w./-]+\.(?:py|md|json))(?:::(\w+))?`", fake)[0]
    assert not re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M)


def test_every_proof_step_citation_in_the_theorem_docs_names_a_real_test():
    cited, missing = 0, []
    for doc in sorted((ROOT / "docs" / "theorems").glob("*.md")):
        for path, name in re.findall(r"`(tests/[\w./-]+\.py)::(\w+)`", doc.read_text()):
            cited += 1
            if not (ROOT / path).is_file() or not re.search(rf"^def {name}\(", (ROOT / path).read_text(), re.M):
                missing.append(f"{doc.name}: {path}::{name}")
    assert not missing, missing
    assert cited >= 18  # the proof-step checks of tests/proofs/ at least

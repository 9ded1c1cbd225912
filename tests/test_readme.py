"""README.md is run as written: its two set-up commands are the CI's, and its Python blocks run as a script."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"## {title}")
    return README[start: README.index("\n## ", start + 3)]


def test_the_two_set_up_commands_are_exactly_what_ci_runs():
    commands = re.findall(r"```bash\n(.*?)\n```", section("Set up"), flags=re.S)
    assert len(commands) == 2
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    for command in commands:
        assert command in ci, f"README command not run by .ci/run: {command}"
    assert "pip install -e . " in commands[0] + " " and "torch" not in commands[0] and "georecall check" in commands[0]
    assert '".[test]"' in commands[1] and '"torch==2.13.0"' in commands[1] and "pytest" in commands[1]


def test_the_quick_start_runs_as_a_script_and_prints_its_verdicts():
    quick = re.findall(r"```python\n(.*?)```", section("Quick start"), flags=re.S)
    continued = [block for block in quick if block.startswith("from georecall import compare")]
    assert quick[0].startswith("from georecall import Instance") and continued
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        namespace: dict = {}
        exec(compile(quick[0], "README.md (Quick start)", "exec"), namespace)
        exec(compile(continued[0], "README.md (continued)", "exec"), namespace)
    lines = printed.getvalue().splitlines()
    assert sum("EXACT: checked all 16,384 single_hop queries" in line for line in lines) == 2
    assert any("tight" in line for line in lines) and len(lines) == 6


def test_every_notebook_name_is_the_function_even_after_the_command_line_imported_its_module():
    import importlib

    import georecall
    from georecall.cli import main

    assert main(["tradeoff", "--d", "16", "--R", "2", "--json"]) == 0  # imports the module behind the name
    for name, home in georecall._HOMES.items():
        importlib.import_module(home)
        assert not isinstance(getattr(georecall, name), type(georecall)), f"georecall.{name} is a module, not the API object"

"""The pytest plugin as a user meets it: through pytester, in a fresh pytest run."""

from pathlib import Path

import pytest

import georecall.verify.fast  # noqa: F401 (see below)

pytest_plugins = ["pytester"]
# pytester's in-process runs restore sys.modules afterwards, and numpy's C extensions (numpy.fft,
# which scipy.linalg pulls in through the fast path) cannot be imported a second time in one
# process: import them here, before any in-process run, so that no run is the first to.

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "own_construction"


def test_the_worked_example_passes_with_the_plugin(pytester):
    for name in ("lookup_table.py", "test_lookup_table.py"):
        pytester.makepyfile(**{name[:-3]: (EXAMPLE / name).read_text()})
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=4)


def test_a_failing_user_test_shows_the_failing_queries_and_margins(pytester):
    pytester.makepyfile(lookup_table=(EXAMPLE / "lookup_table.py").read_text())
    pytester.makepyfile(
        test_user="""
        from lookup_table import lookup_table

        def test_broken(georecall_make_instance, georecall_assert_exact_recall):
            instance = georecall_make_instance(16, 2, seed=0)
            georecall_assert_exact_recall(lookup_table(instance, broken=True), instance)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*FAILED on *: checked all 32 single_hop queries*",
                                 "*query * (subject *, relation *): expected *, predicted *, margin -1.0",
                                 "*... and * more failing queries*"])


def test_a_margin_requirement_is_enforced(pytester):
    pytester.makepyfile(lookup_table=(EXAMPLE / "lookup_table.py").read_text())
    pytester.makepyfile(
        test_user="""
        from lookup_table import lookup_table

        def test_margin(georecall_instance, georecall_assert_exact_recall):
            georecall_assert_exact_recall(lookup_table(georecall_instance), min_margin=1.0, instance=georecall_instance)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*least margin 1 is not above min_margin = 1*"])


def test_a_bound_violation_names_the_bound(pytester):
    pytester.makepyfile(
        test_claim="""
        from georecall import build_construction
        from dataclasses import replace

        def test_claim(georecall_make_instance, georecall_assert_respects_bounds):
            spec = build_construction("block", georecall_make_instance(4096, 8)).spec
            georecall_assert_respects_bounds(spec)                       # the real construction is fine
            georecall_assert_respects_bounds(replace(spec, subject_embedding_dim=spec.subject_embedding_dim // 2))
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*claims fewer bits than a proven bound allows*", "*generic: *needs 96 bits, spends 48*"])


def test_helpers_reject_objects_they_cannot_judge():
    from georecall.testing import assert_exact_recall, assert_respects_bounds

    with pytest.raises(TypeError, match="TransformerWeights"):
        assert_exact_recall("weights.npz")
    with pytest.raises(TypeError, match="ConstructionSpec"):
        assert_respects_bounds(42)


def test_the_plugin_imports_nothing_heavy_until_a_fixture_is_used():
    import subprocess
    import sys

    code = ("import sys, georecall.pytest_plugin; "
            "print(sorted(m for m in ('sympy', 'numpy', 'mpmath', 'matplotlib', 'georecall.theory') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_the_wheel_installs_only_georecall_at_the_top_level(tmp_path):
    import subprocess
    import sys
    import zipfile
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), str(root)],
                   check=True, capture_output=True)
    wheel = next(tmp_path.glob("*.whl"))
    tops = {name.split("/")[0] for name in zipfile.ZipFile(wheel).namelist() if not name.split("/")[0].endswith((".dist-info", ".data"))}
    assert tops == {"georecall"}
    names = zipfile.ZipFile(wheel).namelist()
    assert "georecall/verify/run.py" in names and "georecall/bounds/compare.py" in names

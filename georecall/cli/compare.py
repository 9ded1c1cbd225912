"""``georecall compare``: a construction (weights file or spec) against the lower bounds that cover its queries."""

from __future__ import annotations

import json
import os

from georecall.cli.args import EXIT_FAILED, EXIT_OK, BadInput, positive_int
from georecall.cli.progress import add_quiet_option, phases
from georecall.formats.containers import load_model
from georecall.formats.safe_json import parse_json
from georecall.tables import format_table
from georecall.theory.spec import ConstructionSpec


def add_parsers(sub) -> None:
    compare = sub.add_parser("compare", help="a construction (weights .npz or spec .json) against the lower bounds")
    compare.add_argument("file", help="a weights file (.npz, safetensors or a TransformerLens export; recognised by content), or a .json ConstructionSpec")
    compare.add_argument("--precision", type=positive_int("--precision", minimum=1, maximum=2**20), default=None, help="bits per stored number p, 1..1048576 (default: the spec's bits per coordinate)")
    compare.add_argument("--json", action="store_true", help="print one JSON object")
    add_quiet_option(compare)


SPEC_MAX_BYTES = 2**20


def load_comparable(path: str):
    """A weights file in any container, or a ConstructionSpec JSON file (.json)."""
    if path.endswith(".json"):
        if not os.path.isfile(path):
            raise BadInput(f"spec file {path} does not exist or is not a regular file")
        if os.path.getsize(path) > SPEC_MAX_BYTES:
            raise BadInput(f"spec file {path} is {os.path.getsize(path):,} bytes (limit {SPEC_MAX_BYTES:,})")
        with open(path, "rb") as handle:
            data = parse_json(handle.read(), f"spec file {path}")
        try:
            return ConstructionSpec.from_json_dict(data)
        except TypeError as exc:
            raise BadInput(f"{path} is not a ConstructionSpec JSON object ({exc})") from None
    return load_model(path)


def run(args) -> int:
    from georecall.bounds import compare

    done = phases("compare", 2, args.quiet)  # read and describe the file, compare with the bounds
    comparable = load_comparable(args.file)
    done()
    result = compare(comparable, args.precision)
    done()
    if args.json:
        print(json.dumps(result.to_json_dict()))
    else:
        print(result.summary())
        print(format_table(result.bounds, [("name", "bound"), ("needed_bits", "needed bits"), ("spent_bits", "spent bits"),
                                           ("ratio", "ratio"), ("ratio_d_model", "ratio on d_model"), ("holds", "respected"),
                                           ("statement", "statement")]))
        for note in result.notes:
            print(f"note: {note}")
    return EXIT_FAILED if result.verdict == "impossible" else EXIT_OK


COMMANDS = {"compare": run}

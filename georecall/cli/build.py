"""``georecall build``: build a construction and write its weights file."""

from __future__ import annotations

import json
import os

from georecall.cli.args import EXIT_OK, BadInput, add_construction_options, construction_kwargs, refuse_inapplicable_options
from georecall.constructions.registry import build_construction
from georecall.formats.containers import save_model
from georecall.theory.instance import Instance


def add_parsers(sub) -> None:
    build = sub.add_parser("build", help="build a construction and write its weights file")
    add_construction_options(build)
    build.add_argument("--out", required=True, help="path of the .npz weights file to write (written atomically)")
    build.add_argument("--force", action="store_true", help="replace --out if it exists")
    build.add_argument("--json", action="store_true", help="print the spec as one JSON object")


def run(args) -> int:
    name = "cot" if args.cot else args.construction
    if args.cot_steps is not None and not args.cot:
        raise BadInput("--cot-steps needs --cot")
    if args.cot and args.construction != "block":
        raise BadInput(f"--cot builds its own construction; --construction {args.construction} does not apply")
    refuse_inapplicable_options(args, name)
    if os.path.exists(args.out) and not args.force:
        raise BadInput(f"--out {args.out} exists; pass --force to replace it")
    instance = Instance.random(args.N, args.R, args.seed)
    if args.hops > 1 and name in ("block", "planar", "shared-space"):
        raise BadInput(f"--hops {args.hops} needs --construction chains or associative, or --cot")
    model = build_construction(name, instance, **construction_kwargs(args))
    save_model(args.out, model.weights, instance, model.spec)
    if args.json:
        print(json.dumps({"file": args.out, "spec": model.spec.to_json_dict()}))
    else:
        s = model.spec
        print(f"wrote {args.out}: {s.name}, N={s.N}, R={s.R}, d_model={s.d_model}, d_mlp={s.d_mlp}, "
              f"subject params {s.subject_params:,}, shared params {s.shared_params:,}")
    return EXIT_OK


COMMANDS = {"build": run}

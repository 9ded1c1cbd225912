"""``georecall build``: build a construction and write its weights file."""

from __future__ import annotations

import json

from georecall.cli.args import EXIT_OK, BadInput, add_construction_options, construction_kwargs, refuse_inapplicable_options, warn_deprecated
from georecall.cli.progress import add_quiet_option, phases
from georecall.constructions.registry import build_construction, build_streamed, code_size, refuse_out_of_reach, streams
from georecall.formats.containers import save_arrays, save_model
from georecall.formats.files import check_new_file
from georecall.theory.instance import Instance


def add_parsers(sub) -> None:
    build = sub.add_parser("build", help="build a construction and write its weights file")
    add_construction_options(build)
    build.add_argument("--out", required=True, help="path of the .npz weights file to write (written atomically)")
    build.add_argument("--force", action="store_true", help="replace --out if it is an existing regular file (never a link, folder or device)")
    build.add_argument("--json", action="store_true", help="print the spec as one JSON object")
    add_quiet_option(build)


def run(args) -> int:
    if args.cot:
        warn_deprecated("--cot", "--construction cot")
        if args.construction not in ("block", "cot"):  # block is the default, so it was not asked for
            raise BadInput(f"--cot builds its own construction; --construction {args.construction} does not apply")
        args.construction = "cot"
    name = args.construction
    if args.cot_steps is not None and name != "cot":
        raise BadInput("--cot-steps needs --construction cot")
    refuse_inapplicable_options(args, name)
    check_new_file(args.out, args.force)
    code = code_size(args.codebook, args.N, args.precision, args.delta)
    streamed = streams(name, args.codebook)  # the same file, written a block at a time: no float64 W_E or W_U
    refuse_out_of_reach(name, args.N, args.R, code, construction_kwargs(args), streamed)  # before any N-sized array exists
    if args.hops > 1 and name in ("block", "planar", "shared-space"):
        raise BadInput(f"--hops {args.hops} needs --construction chains, associative or cot")
    done = phases("build", 3, args.quiet)  # the facts, the weights, the file
    instance = Instance.random(args.N, args.R, args.seed)
    done()
    if streamed:
        model = build_streamed(name, instance, codebook=args.codebook, precision=args.precision)
        done()
        save_arrays(args.out, model.arrays, instance, model.meta, model.spec)
    else:
        model = build_construction(name, instance, **construction_kwargs(args))
        done()
        save_model(args.out, model.weights, instance, model.spec)
    done()
    if args.json:
        print(json.dumps({"file": args.out, "spec": model.spec.to_json_dict()}))
    else:
        s = model.spec
        print(f"wrote {args.out}: {s.name}, N={s.N}, R={s.R}, d_model={s.d_model}, d_mlp={s.d_mlp}, "
              f"subject params {s.subject_params:,}, shared params {s.shared_params:,}")
    return EXIT_OK


COMMANDS = {"build": run}

"""``georecall train`` and ``georecall sweep``: the gradient-descent experiments from the command line.

PyTorch is imported only when one of these commands runs, so the rest of the CLI works without it.
"""

from __future__ import annotations

import json

from georecall.cli.args import positive_int, real
from georecall.cli.progress import add_quiet_option, counter, say
from georecall.theory.checks import InputError, MissingExtra


class NeedsTorch(MissingExtra):
    pass


def _experiments():
    try:
        import torch  # noqa: F401
    except ImportError:
        raise NeedsTorch("this command needs PyTorch, from the [train] extra: pip install -e \".[train]\" \"torch==2.13.0\"") from None
    import georecall.experiments.cli_support as support

    return support


def torch_forward(weights, device: str):
    """The torch float64 backend for ``verify_model`` (``georecall verify --path torch``)."""
    _experiments()
    from georecall.verify.torch_path import TorchForward

    return TorchForward(weights, device)


def add_training_options(p, init_scale: float = 1.0, weight_decay: float = 0.0, d_mlp: int = 64) -> None:
    p.add_argument("--d-mlp", type=positive_int("--d-mlp", minimum=1, maximum=2**20), default=d_mlp, help=f"MLP width, >= 1 (default {d_mlp})")
    p.add_argument("--steps", type=positive_int("--steps", maximum=10**8), default=3000, help="step budget, >= 0 (default 3000)")
    p.add_argument("--lr", type=real("--lr", above=0, maximum=100), default=1e-2, help="AdamW learning rate, in (0, 100] (default 0.01)")
    p.add_argument("--weight-decay", type=real("--weight-decay", minimum=0, maximum=1000), default=weight_decay,
                   help=f"AdamW decoupled weight decay, in [0, 1000] (default {weight_decay:g})")
    p.add_argument("--init-scale", type=real("--init-scale", above=0, maximum=1e6), default=init_scale,
                   help=f"norm of an initial embedding row, in (0, 1e6] (default {init_scale:g})")
    p.add_argument("--batch-size", type=positive_int("--batch-size", minimum=1), default=None, help="facts per step (default: all, full batch)")
    p.add_argument("--stop-margin", type=real("--stop-margin", minimum=0, maximum=1e6), default=1.0,
                   help="stop once every margin is >= this; 0 runs every step (default 1)")
    p.add_argument("--dtype", default="float32", help="float32 (default) or float64")
    p.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    add_quiet_option(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")


def add_parsers(sub) -> None:
    train = sub.add_parser(
        "train", help="train the one-layer model on R random bijections; analyse its structure and transfer",
        description="Defaults: init scale 0.1, weight decay 0.5 and d_mlp 256, the regime that best reproduces the paper's "
                    "superposition (results/training/README.md: cross-validated R^2 0.818, 0.812, 0.818 over seeds 0-2 at "
                    "--N 1024 --R 4 --d 32, against 0.63 at init 1 without weight decay, d_mlp 64). No regime tried reproduces "
                    "the paper's relation-gated MLP units. sweep keeps init 1, no weight decay and d_mlp 64, the protocol of its "
                    "published thresholds.")
    train.add_argument("--N", type=positive_int("--N", minimum=2), default=256, help="number of subjects, >= 2 (default 256)")
    train.add_argument("--R", type=positive_int("--R", minimum=1), default=2,
                       help="number of relations, >= 1 (default 2, not build's 4: a training run's cost grows with R, and the "
                            "published measurements use R = 2)")
    train.add_argument("--d", type=positive_int("--d", minimum=1, maximum=2**16), default=32, help="d_model, >= 1 (default 32)")
    train.add_argument("--seed", type=positive_int("--seed"), default=0, help="seed of the initialisation and the facts (default 0)")
    train.add_argument("--out", default=None, help="folder for config.json, metrics.jsonl, model.npz and summary.json")
    train.add_argument("--force", action="store_true", help="replace --out if it holds a previous georecall train run")
    train.add_argument("--freeze", nargs="*", default=[], help="parameter groups to hold fixed: subjects relations pos attn mlp unembed")
    train.add_argument("--fixed-attention", action="store_true", help="freeze attention at a uniform average with identity OV (associative baseline)")
    train.add_argument("--tie-unembed", action="store_true",
                       help="tied attributes: W_U = W_E[:N]^T, an answer's code is its entity's own embedding")
    train.add_argument("--transfer-steps", type=positive_int("--transfer-steps"), default=2000, help="embedding-only step budget in the transfer test (default 2000)")
    train.add_argument("--no-analysis", action="store_true", help="train only: skip the structure and transfer analyses")
    train.add_argument("--instances", type=positive_int("--instances", minimum=1, maximum=4096), default=1,
                       help="train shared weights jointly on this many instances, each with its own subject table "
                            "(analyses use the first; default 1)")
    add_training_options(train, init_scale=0.1, weight_decay=0.5, d_mlp=256)

    sweep = sub.add_parser("sweep", help="threshold d* (least d_model reaching 100%% train accuracy) by bisection over a grid")
    sweep.add_argument("--N", type=positive_int("--N", minimum=2), nargs="*", default=[64, 128, 256, 512, 1024], help="N values for the N axis (default 64 128 256 512 1024)")
    sweep.add_argument("--at-R", type=positive_int("--at-R", minimum=1), default=2, help="R held fixed on the N axis (default 2)")
    sweep.add_argument("--R", type=positive_int("--R", minimum=1), nargs="*", default=[1, 2, 4, 8], help="R values for the R axis (default 1 2 4 8)")
    sweep.add_argument("--at-N", type=positive_int("--at-N", minimum=2), default=256, help="N held fixed on the R axis (default 256)")
    sweep.add_argument("--seeds", type=positive_int("--seeds"), nargs="+", default=[0, 1, 2], help="seeds (init and facts), >= 3 recommended (default 0 1 2)")
    sweep.add_argument("--d-max", type=positive_int("--d-max", minimum=1, maximum=2**16), default=256, help="largest d_model tried, >= 1 (default 256)")
    sweep.add_argument("--out", required=True, help="folder for runs.csv, thresholds.csv, sweep.json, config.json, thresholds.png")
    sweep.add_argument("--force", action="store_true",
                       help="replace --out if it holds a georecall sweep under another training protocol (the same protocol resumes)")
    add_training_options(sweep)
    from georecall.experiments.executors import add_executor_options

    add_executor_options(sweep)


def base_config(args, **fields):
    from georecall.experiments.config import TrainConfig

    return TrainConfig(d_mlp=args.d_mlp, steps=args.steps, lr=args.lr, weight_decay=args.weight_decay,
                       embed_init_scale=args.init_scale, batch_size=args.batch_size, stop_margin=args.stop_margin,
                       dtype=args.dtype, device=args.device, **fields)


def cmd_sweep(args) -> int:
    support = _experiments()
    from georecall.experiments.executors import executor_from_args

    points = sorted({(N, args.at_R) for N in args.N} | {(args.at_N, R) for R in args.R})
    if not points:
        raise InputError("sweep needs at least one N (--N) or R (--R) value")
    base = base_config(args, N=points[0][0], R=points[0][1], d_model=1)
    result = support.run_and_write_sweep(points, base, args.seeds, args.d_max, args.out, say(args.quiet),
                                         lambda: executor_from_args(args), args.force)
    if args.json:
        print(json.dumps(result.to_json_dict()))
    else:
        print(sweep_table(result))
    return 0


def cmd_train(args) -> int:
    from georecall.formats.files import check_run_folder

    if args.out is not None:
        check_run_folder(args.out, args.force, "train")
    support = _experiments()
    config = base_config(args, N=args.N, R=args.R, d_model=args.d, seed=args.seed, freeze=tuple(args.freeze),
                         fixed_attention=args.fixed_attention, tie_unembed=args.tie_unembed)
    from georecall.experiments.config import refuse_out_of_reach

    refuse_out_of_reach(config, args.instances)
    summary = support.train_and_analyse(config, args.out, args.transfer_steps, not args.no_analysis,
                                         None if args.quiet else (lambda label: counter(label, "steps")), args.instances)
    if args.json:
        print(json.dumps(summary))
    else:
        print(support.summary_text(summary))
    return 0 if summary["train_accuracy"] == 1.0 else 1


def sweep_table(result) -> str:
    from georecall.tables import format_table

    rows = result.medians()
    lines = [format_table(rows, [("N", "N"), ("R", "R"), ("seeds", "seeds"), ("d_star_median", "d* median"),
                                 ("d_star_min", "d* min"), ("d_star_max", "d* max")])]
    for name, fit in result.fits.items():
        lines.append(f"{name}: slope {fit['slope']:.3g}, intercept {fit['intercept']:.3g}, R^2 {fit['r2']:.3f} ({fit['points']} points)")
    return "\n".join(lines)


COMMANDS = {"train": cmd_train, "sweep": cmd_sweep}

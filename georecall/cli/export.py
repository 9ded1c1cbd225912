"""``georecall export``: a weights file in another container (npz, safetensors, TransformerLens)."""

from __future__ import annotations


from georecall.cli.args import EXIT_OK
from georecall.cli.progress import add_quiet_option, phases
from georecall.formats.containers import CONTAINERS, load_model, save_model_as
from georecall.formats.files import check_new_file


def add_parsers(sub) -> None:
    export = sub.add_parser("export", help="write a weights file in another container: npz, safetensors or a TransformerLens state dict")
    export.add_argument("file", help="a weights file in any container georecall reads")
    export.add_argument("--to", choices=CONTAINERS, required=True,
                        help="npz (docs/FORMAT.md), safetensors (the same arrays), or transformer-lens (a safetensors TransformerLens "
                             "native state dict with its config; docs/interop.md)")
    export.add_argument("out", help="the file to write (atomically)")
    export.add_argument("--force", action="store_true", help="replace OUT if it is an existing regular file (never a link, folder or device)")
    add_quiet_option(export)


def run(args) -> int:
    check_new_file(args.out, args.force, option="OUT")
    done = phases("export", 2, args.quiet)  # read and check, write
    loaded = load_model(args.file)
    done()
    save_model_as(args.out, args.to, loaded.weights, loaded.instance, loaded.spec)
    done()
    print(f"wrote {args.out}: {args.to}, N={loaded.weights.meta.N}, R={loaded.weights.meta.R}, d_model={loaded.weights.d_model}")
    return EXIT_OK


COMMANDS = {"export": run}

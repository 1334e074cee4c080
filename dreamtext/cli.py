"""The ``dreamtext`` command: a thin dispatcher over the library.

Each subcommand lives in ``dreamtext/commands/<name>.py`` and exposes
``register(subparsers)``, which adds its parser and sets ``func``. Heavy
imports happen inside the ``func``s so ``dreamtext --help`` stays instant.
A :class:`~dreamtext.errors.DreamTextError` becomes one line on stderr and
exit status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .errors import DreamTextError

# Order is the order in ``dreamtext --help``.
COMMAND_MODULES = ["demo", "edit", "data", "pretrain", "train", "verifier", "refiner", "probe", "curves", "eval", "compare", "ablate", "export", "convert", "serve"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dreamtext", description="Scene text synthesis and editing (DreamText).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(f"dreamtext.commands.{name}")
        except ModuleNotFoundError as e:  # a command not built yet
            if e.name != f"dreamtext.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value overrides may stand before and after options (`train a=1 --preset tiny b=2`): argparse hands
    # the ones after an option back as unknown; they join the command's overrides.
    if extra:
        if hasattr(args, "overrides") and all("=" in a and not a.startswith("-") for a in extra):
            args.overrides = list(args.overrides) + extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    try:
        return int(args.func(args) or 0)
    except DreamTextError as e:
        print(f"dreamtext {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"dreamtext {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

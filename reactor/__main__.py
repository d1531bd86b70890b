"""``python -m reactor``: the command line.

``python -m reactor backends`` lists every backend, whether it can run here
(and why not), and which one ``IOLoop()`` would choose.
"""

from __future__ import annotations

import argparse
import sys

import backends


def _backends(args: argparse.Namespace) -> int:
    default = backends.default_name()
    try:
        chosen = backends.get(backends.env_choice())[0]
        chosen_error = None
    except backends.BackendError as e:
        chosen, chosen_error = None, str(e)
    rows = []
    for name, reason in backends.available().items():
        entry = backends.BACKENDS.get(name)
        description = entry.description if entry else "registered by an entry point"
        status = "available" if reason is None else f"unavailable: {reason}"
        marks = []
        if name == default:
            marks.append("default")
        if name == chosen and chosen != default:
            marks.append("chosen by REACTOR_BACKEND")
        mark = f" ({', '.join(marks)})" if marks else ""
        rows.append(f"  {name:<8} {status}{mark}\n           {description}")
    print(f"reactor backends on {sys.platform}:")
    print("\n".join(rows))
    print(f"default: {default}")
    if chosen_error:
        print(f"REACTOR_BACKEND is invalid: {chosen_error}", file=sys.stderr)
        return 2
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reactor")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("backends", help="list the event-loop backends").set_defaults(run=_backends)
    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())

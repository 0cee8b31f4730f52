"""The `nanoloop` command line (placeholder while the core is written)."""
import argparse
import sys

from loop.errors import InputError


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="nanoloop")
    sub = parser.add_subparsers(dest="command", required=True)
    from flows import cli_kinetics
    cli_kinetics.register(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except InputError as err:
        print(f"nanoloop: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

"""The ``nanoloop`` command line: the parser and the entry point.

Each ``flows/cli_*.py`` module registers its commands here; what the commands
share (STORE, units, counts, approval options) is in :mod:`nanoloop.flows.cli_args`.
Modules are imported when a command runs, not when the parser is built, so
``nanoloop --help`` imports neither torch nor Prefect.

Every command reports bad input as one line on stderr and exits with code 2,
having written nothing.
"""

from __future__ import annotations

import argparse
import os
import sys

from nanoloop.flows import cli_args, cli_campaign, cli_dashboard, cli_design, cli_import, cli_kinetics, cli_review, cli_server, cli_surrogate

DESCRIPTION = ("Closed-loop design of drug-releasing nanoparticles. STORE, the campaign's ledger (a folder or a pyarrow "
               "filesystem URI), is a positional argument in every command: the first after the command, or after CONFIG "
               "(`run CONFIG [STORE]`, `schedule CONFIG [STORE]`). Old spellings (--store, serve, --approval-timeout, ...) "
               "work until the next release, with a note.")

LONG_RUNNING = ("run", "demo", "server")  # `schedule` leaves SIGTERM to Prefect's runner, which stops its flow-run processes with it


def _quiet_prefect() -> None:
    """Offline, quiet Prefect defaults; a user's own settings win."""
    for key, value in {
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
        "DASK_LOGGING__DISTRIBUTED": "warning",
    }.items():
        os.environ.setdefault(key, value)


def build_parser() -> argparse.ArgumentParser:
    parser = cli_args.Parser(prog="nanoloop", description=DESCRIPTION)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (cli_campaign, cli_server, cli_kinetics, cli_surrogate, cli_design, cli_dashboard, cli_review, cli_import):
        module.register(sub)
    return parser


def main(argv=None) -> int:
    _quiet_prefect()
    args = build_parser().parse_args(argv)
    # the command line itself, not a call from Python; Dask's worker processes would inherit the blocked signals
    if argv is None and args.command in LONG_RUNNING and getattr(args, "dask", None) is None:
        from nanoloop.flows.lifecycle import exit_on_sigterm

        exit_on_sigterm()
    from nanoloop.loop.errors import InputError

    try:
        return int(args.handler(args) or 0)
    except InputError as err:
        print(f"nanoloop: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:
        from nanoloop.loop.store.ledger import storage_message

        message = storage_message(err)
        if message is None:
            raise
        print(f"nanoloop: error: {message}", file=sys.stderr)
        return 2
    finally:
        if args.command in LONG_RUNNING:
            from nanoloop.flows.lifecycle import stop_children

            stop_children()


if __name__ == "__main__":
    sys.exit(main())

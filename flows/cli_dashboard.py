"""``nanoloop dashboard`` and ``nanoloop report``: the monitoring web app and the HTML report of a campaign."""

from __future__ import annotations

import socket
import sys

from nanoloop.flows.cli_args import add_old_spelling, add_store, port_number, seconds_between
from nanoloop.loop.errors import InputError

DEFAULT_PORT = 8050
HOST = "127.0.0.1"  # the default: loopback; any other address needs an approval token (dashboard/auth.py)


def _check_port_free(host: str, port: int) -> None:
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError:
            raise InputError(f"port {port} on {host} is in use; choose another with --port") from None


def cmd_dashboard(args) -> int:
    from nanoloop.loop.store.ledger import check_location

    check_location(args.store)
    from nanoloop.dashboard.auth import load_tokens, require_token_off_loopback

    tokens = load_tokens(args.token_file)
    require_token_off_loopback(args.host, tokens)
    _check_port_free(args.host, args.port)
    from nanoloop.dashboard.app import serve
    from nanoloop.dashboard.data import StoreUnavailable, load_snapshot

    try:
        load_snapshot(args.store)
        note = ""
    except StoreUnavailable as err:
        note = f" ({err}; the page shows it as soon as it appears)"
    guard = f"approval token required ({len(tokens)} holder(s))" if tokens else "no token: loopback only"
    print(f"nanoloop dashboard: http://{args.host}:{args.port}/ for {args.store}{note}; {guard}; Ctrl-C stops it", flush=True)
    try:
        serve(args.store, port=args.port, host=args.host, poll_seconds=args.poll_s, tokens=tokens)
    except KeyboardInterrupt:
        pass
    return 0


def cmd_report(args) -> int:
    from nanoloop.loop.store.ledger import Ledger, check_location

    check_location(args.store)
    from nanoloop.dashboard.report import write_report

    out = write_report(args.store, args.out)
    ledger = Ledger(args.store, create=False, tolerant=True)
    for table in ("formulations", "events", "curves", "kinetics", "characterization", "models", "explanations"):
        ledger.read(table)
    for reason in ledger.unreadable.values():
        print(f"nanoloop: warning: skipped {reason}; run `nanoloop doctor {args.store} --repair`", file=sys.stderr)
    print(f"wrote {out} ({out.stat().st_size / 1e6:.1f} MB, self-contained: open it in any browser)")
    return 0


def register(subparsers) -> None:
    """Add the ``dashboard`` and ``report`` commands to the ``nanoloop`` parser's subcommands."""
    p = subparsers.add_parser("dashboard", help="serve the campaign's monitoring web app on 127.0.0.1")
    add_store(p)
    p.add_argument("--port", type=port_number, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--host", default=HOST, help="address to bind (default 127.0.0.1; any other needs an approval token)")
    p.add_argument("--token-file", default=None, help="file of approval tokens, one label:secret per line "
                   "(or set NANOLOOP_DASHBOARD_TOKEN=label:secret)")
    poll = p.add_argument("--poll-s", type=seconds_between(0.2, 3600), default=3.0, metavar="S",
                          help="seconds between checks of the ledger for new results (default 3)")
    add_old_spelling(p, "--poll", poll)
    p.set_defaults(handler=cmd_dashboard)

    p = subparsers.add_parser("report", help="write a self-contained HTML report of the campaign")
    add_store(p)
    p.add_argument("--out", default="report.html", help="the HTML file to write (default ./report.html)")
    p.set_defaults(handler=cmd_report)

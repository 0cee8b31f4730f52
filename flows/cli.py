"""The ``nanoloop`` command line.

Every command reports bad input as one line on stderr and exits with code 2,
having written nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from nanoloop.loop.errors import InputError

DEFAULT_DEMO_STORE = "nanoloop-demo"


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


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _check_store_path(store: str) -> None:
    if "://" not in store and Path(store).is_file():
        raise InputError(f"store {store!r} is a file, not a folder")


def cmd_init(args) -> int:
    from nanoloop.loop.config import example_config_text

    folder = Path(args.dir)
    if folder.is_file():
        raise InputError(f"{folder} is a file, not a folder")
    target = folder / "campaign.toml"
    if target.exists():
        raise InputError(f"{target} already exists; not overwriting it")
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(example_config_text(args.example))
    print(f"wrote {target}: edit it, then run `nanoloop run {target}`")
    return 0


def _load_config(path: str):
    """Load a config and check its instruments (trusted, importable, protocol on the class): nothing is built or stored."""
    from nanoloop.adapters.registry import check_instruments
    from nanoloop.loop.config import load_config

    config = load_config(path)
    try:
        check_instruments(config)
    except InputError as err:
        raise InputError(f"{path}: {err}") from None
    return config


def _check_dask_address(address: str, timeout_s: float = 3.0) -> None:
    """Refuse a Dask scheduler address nobody answers at (before anything is stored)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    try:
        host, port = parts.hostname, parts.port or 8786
    except ValueError:
        raise InputError(f"--dask {address!r}: not an address like tcp://HOST:PORT") from None
    if not host:
        raise InputError(f"--dask {address!r}: not an address like tcp://HOST:PORT")
    try:
        socket.create_connection((host, port), timeout=timeout_s).close()
    except OSError as err:
        raise InputError(f"--dask {address!r}: no Dask scheduler answers at {host}:{port} ({err.strerror or err}); "
                         "start one (`dask scheduler`) or pass --dask without an address for a local cluster") from None


def _run_campaign(config, store: str, rounds: int | None, auto_approve: bool, approval_timeout_s: int = 3600, dask: str | None = None,
                  amend: bool = False) -> int:
    from nanoloop.loop.campaign.campaign import Campaign
    from nanoloop.loop.store.ledger import Ledger

    _check_store_path(store)
    if not auto_approve and not os.environ.get("PREFECT_API_URL"):
        raise InputError(
            "approval by a person needs a running Prefect server: start one with `nanoloop server`, "
            "export the PREFECT_API_URL it prints, and run again; or pass --auto-approve"
        )
    if dask:
        _check_dask_address(dask)
    ledger = Ledger(store)
    ledger.check_writable()
    campaign = Campaign(config, ledger, amend=amend)  # validates and stores the config before Prefect starts
    rounds = rounds or config.rounds
    from nanoloop.flows.progress import say

    if campaign.current_round() >= rounds:
        say(f"campaign {config.name} in {store} already has {rounds} finished rounds; pass --rounds to go on")
    else:
        say(f"campaign {config.name}: running to {rounds} rounds of {config.batch_size}; ledger in {store}")
        if dask is not None and campaign.config.surrogate.model == "blend":
            say('note: --dask trains the members of model = "ensemble" on the cluster; '
                "the blend (this campaign's model) trains its parts on threads in this process")
        if not os.environ.get("PREFECT_API_URL"):
            from nanoloop.flows.lifecycle import start_temporary_server

            say("starting a temporary local Prefect server for this run (10-20 s; set PREFECT_API_URL to use a running one) ...")
            os.environ["PREFECT_API_URL"] = start_temporary_server()  # before Prefect is imported; dies with this process
            say(f"temporary Prefect server at {os.environ['PREFECT_API_URL']} (stops with this run)")
        else:
            say(f"connecting to the Prefect server at {os.environ['PREFECT_API_URL']} ...")
        from nanoloop.flows.rounds import campaign_flow

        summaries = campaign_flow(
            store, rounds, auto_approve=auto_approve, approval_timeout_s=approval_timeout_s,
            dask=dask is not None, dask_address=dask or None,
        )
        if summaries and summaries[-1].get("stopped"):
            _print_status(store, as_json=False)
            print(f"nanoloop: {summaries[-1]['stopped']}", file=sys.stderr)
            return 1
    return _print_status(store, as_json=False)


def cmd_demo(args) -> int:
    from nanoloop.loop.config import default_config

    config = default_config()
    if args.batch:
        config = config.model_copy(update={"batch_size": args.batch})
    return _run_campaign(config, args.store, args.rounds, auto_approve=True)


def cmd_run(args) -> int:
    config = _load_config(args.config)
    return _run_campaign(config, args.store or f"{config.name}-ledger", args.rounds, args.auto_approve, args.approval_timeout, args.dask,
                         amend=args.amend)


def _print_status(store: str, as_json: bool) -> int:
    from nanoloop.loop.campaign.campaign import Campaign
    from nanoloop.loop.campaign.evaluation import campaign_status

    _check_store_path(store)
    campaign = Campaign.open(store, tolerant=True)
    status = campaign_status(campaign.ledger, campaign.config.target, campaign.config.name)
    for path, reason in campaign.ledger.unreadable.items():
        print(f"nanoloop: warning: skipped {reason}; run `nanoloop doctor {store} --repair`", file=sys.stderr)
    if as_json:
        print(json.dumps(status, indent=1))
        return 0
    from nanoloop.flows.progress import console, rounds_table

    if status.get("imported"):
        from nanoloop.loop.store.importing import imported_line

        console.print(imported_line(status["imported"]))
    console.print(rounds_table(status))
    best = status["best"]
    if best:
        params = ", ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in best["parameters"].items())
        where = "imported" if best["round"] < 0 else f"round {best['round']}"
        console.print(f"best: {best['formulation_id']} ({where}) f2 = {best['f2']:.1f}: {params}")
    failures = status["failures"]
    if failures["formulations"]:
        console.print(f"failed: {len(failures['formulations'])} formulations, by reason:")
        for reason, count in failures["by_reason"].items():
            console.print(f"  {count:3d}  {reason}")
    if status["awaiting_approval"]:
        console.print(f"awaiting approval: {len(status['awaiting_approval'])} formulations: {' '.join(status['awaiting_approval'])}")
        console.print(f"review them with `nanoloop batch {store}` before `nanoloop approve {store}`")
    return 0


def cmd_status(args) -> int:
    return _print_status(args.store, args.json)


def cmd_approve(args) -> int:
    from nanoloop.flows.approval import approve_from_terminal
    from nanoloop.loop.campaign.campaign import Campaign

    _check_store_path(args.store)
    edits = {}
    for text in args.edit or []:
        fid, _, assignment = text.partition(":")
        variable, _, value = assignment.partition("=")
        if not fid or not variable or not value:
            raise InputError(f"--edit {text!r}: expected ID:VARIABLE=VALUE")
        try:
            value = float(value)
        except ValueError:
            pass
        edits.setdefault(fid, {})[variable] = value
    print(approve_from_terminal(Campaign.open(args.store), args.reject or [], args.reason, edits, by=args.by or _os_user()))
    return 0


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def cmd_server(args) -> int:
    home = Path(args.home).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    env.update(server_ui_settings(args.port, os.environ))
    print(f"Prefect server on 127.0.0.1:{args.port}, data in {home}. In other shells:\n  export PREFECT_API_URL=http://127.0.0.1:{args.port}/api", flush=True)
    prefect = Path(sys.executable).with_name("prefect")
    from nanoloop.flows.lifecycle import start_child, stop_children

    child = start_child([str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(args.port)], env=env)
    try:  # SIGTERM: the watcher started in main() stops the child; Ctrl-C: here
        return child.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop_children()


def server_ui_settings(port: int, environ) -> dict[str, str]:
    """Settings that make the Prefect UI served on ``port`` call the API on that same port.

    Without them the UI calls the default port 4200 (or a PREFECT_API_URL left in
    the shell). A PREFECT_UI_API_URL the user set (e.g. behind a proxy) is kept.
    """
    api = f"http://127.0.0.1:{port}/api"
    settings = {"PREFECT_SERVER_API_PORT": str(port), "PREFECT_API_URL": api}
    if not (environ.get("PREFECT_UI_API_URL") or environ.get("PREFECT_SERVER_UI_API_URL")):
        settings["PREFECT_UI_API_URL"] = api
    return settings


def cmd_serve(args) -> int:
    from nanoloop.loop.campaign.campaign import Campaign
    from nanoloop.loop.store.ledger import Ledger

    config = _load_config(args.config)
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=args.cron)
    except ValueError:
        raise InputError(f"--cron {args.cron!r}: not a cron expression (five fields, e.g. \"0 8 * * *\" for 08:00 every day)") from None
    store = args.store or f"{config.name}-ledger"
    _check_store_path(store)
    Campaign(config, Ledger(store), amend=args.amend)
    from nanoloop.flows.rounds import round_flow

    round_flow.serve(
        name=f"{config.name}-rounds",
        cron=args.cron,
        parameters={"store": str(Path(store).absolute()) if "://" not in store else store, "auto_approve": args.auto_approve, "approval_timeout_s": args.approval_timeout},
        description=f"Advance campaign {config.name} by one round",
    )
    return 0


def cmd_doctor(args) -> int:
    from nanoloop.loop.store.doctor import check_store

    _check_store_path(args.store)
    found = check_store(args.store, repair=args.repair)
    print(f"{args.store}: {found.parts} parts checked")
    for path, reason in found.unreadable.items():
        print(("quarantined: " if path in found.quarantined else "unreadable: ") + reason)
    for path in found.temporaries:
        print(("removed temporary file " if path in found.removed else "temporary file left by a crash: ") + path)
    for problem in found.inconsistencies:
        print(f"event log: {problem}")
    if found.healthy:
        print("the store is consistent" + (" (after repair)" if found.quarantined or found.removed else ""))
        return 0
    if not args.repair and (found.unreadable or found.temporaries):
        print(f"run `nanoloop doctor {args.store} --repair` to move unreadable parts to {args.store}/quarantine/ (with a note) "
              "and remove temporary files")
    return 1


def _approval_options(parser) -> None:
    parser.add_argument("--auto-approve", action="store_true", help="skip the pause for a person's approval")
    parser.add_argument("--approval-timeout", type=_positive, default=3600, help="seconds to wait for approval (default 3600)")
    parser.add_argument("--amend", action="store_true", help="accept a changed design space, target or objective for an existing "
                        "campaign (the change is recorded as an event; the old config is kept)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="nanoloop", description="Closed-loop design of drug-releasing nanoparticles.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("init", help="write a commented example campaign config to DIR/campaign.toml")
    p.add_argument("dir")
    p.add_argument("--example", default="demo", choices=["demo", "warm-start"],
                   help="demo (default) or warm-start (drug logP and medium pH fixed for the campaign)")
    p.set_defaults(handler=cmd_init)

    p = sub.add_parser("demo", help="run a simulated campaign on the embedded default config")
    p.add_argument("--store", default=DEFAULT_DEMO_STORE, help=f"ledger folder or URI (default: ./{DEFAULT_DEMO_STORE})")
    p.add_argument("--rounds", type=_positive, default=None, help="rounds in all (default: 3)")
    p.add_argument("--batch", type=_positive, default=None, help="formulations per round (default: 8)")
    p.set_defaults(handler=cmd_demo)

    p = sub.add_parser("run", help="run a campaign from a TOML config")
    p.add_argument("config")
    p.add_argument("--rounds", type=_positive, default=None)
    p.add_argument("--store", default=None, help="ledger folder or URI (default: ./<name>-ledger)")
    _approval_options(p)
    p.add_argument("--dask", nargs="?", const="", default=None, metavar="ADDRESS", help="with [surrogate] model = \"ensemble\", train its members in parallel on Dask: a local cluster, or the scheduler at ADDRESS")
    p.set_defaults(handler=cmd_run)

    p = sub.add_parser("approve", help="approve the batch awaiting approval (resumes the paused flow run)")
    p.add_argument("store")
    p.add_argument("--reject", nargs="+", metavar="ID", help="formulation ids not to make")
    p.add_argument("--reason", default="", help="why they are rejected")
    p.add_argument("--edit", action="append", metavar="ID:VARIABLE=VALUE", help="change a value of a proposal before it is made")
    p.add_argument("--by", default="", help="who approves (recorded on the approval events; default: your OS user name)")
    p.set_defaults(handler=cmd_approve)

    p = sub.add_parser("server", help="start a local Prefect server on 127.0.0.1 (analytics off)")
    p.add_argument("--port", type=_positive, default=4200)
    p.add_argument("--home", default="~/.nanoloop/prefect", help="where the server keeps its data")
    p.set_defaults(handler=cmd_server)

    p = sub.add_parser("serve", help="advance a campaign by one round on a cron schedule (no work pool needed)")
    p.add_argument("config")
    p.add_argument("--cron", required=True, help='e.g. "0 8 * * *" for 08:00 every day')
    p.add_argument("--store", default=None)
    _approval_options(p)
    p.set_defaults(handler=cmd_serve)

    p = sub.add_parser("status", help="rounds, counts, best formulation and the model's prospective error")
    p.add_argument("store")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=cmd_status)

    p = sub.add_parser("doctor", help="verify every ledger part and the event log; --repair quarantines unreadable parts")
    p.add_argument("store")
    p.add_argument("--repair", action="store_true", help="move unreadable parts to STORE/quarantine/ with a note; remove crash leftovers")
    p.set_defaults(handler=cmd_doctor)

    from nanoloop.flows import cli_dashboard, cli_design, cli_import, cli_kinetics, cli_review, cli_surrogate

    cli_kinetics.register(sub)
    cli_surrogate.register(sub)
    cli_design.register(sub)
    cli_dashboard.register(sub)
    cli_review.register(sub)
    cli_import.register(sub)
    return parser


LONG_RUNNING = ("run", "demo", "server")  # `serve` leaves SIGTERM to Prefect's runner, which stops its flow-run processes with it


def main(argv=None) -> int:
    _quiet_prefect()
    args = build_parser().parse_args(argv)
    # the command line itself, not a call from Python; Dask's worker processes would inherit the blocked signals
    if argv is None and args.command in LONG_RUNNING and getattr(args, "dask", None) is None:
        from nanoloop.flows.lifecycle import exit_on_sigterm

        exit_on_sigterm()
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

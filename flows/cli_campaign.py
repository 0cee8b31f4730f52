"""The campaign's commands: ``init``, ``demo``, ``run``, ``schedule``, ``status``, ``approve`` and ``doctor``.

STORE is positional: ``run CONFIG [STORE]``, ``schedule CONFIG [STORE]``, ``demo [STORE]``,
``status STORE``, ``approve STORE``, ``doctor STORE``. ``serve`` is the old name of ``schedule``.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from nanoloop.flows.cli_args import (
    add_approval_options, add_old_spelling, add_optional_store, add_store, load_campaign_config, old_command, positive_int,
)
from nanoloop.loop.errors import InputError

DEFAULT_DEMO_STORE = "nanoloop-demo"


def register(subparsers) -> None:
    """Add the campaign's commands to the ``nanoloop`` parser's subcommands."""
    p = subparsers.add_parser("init", help="write a commented example campaign config to DIR/campaign.toml")
    p.add_argument("dir", metavar="DIR")
    p.add_argument("--example", default="demo", choices=["demo", "warm-start"],
                   help="demo (default) or warm-start (drug logP and medium pH fixed for the campaign)")
    p.set_defaults(handler=cmd_init)

    p = subparsers.add_parser("demo", help="run a simulated campaign on the embedded default config")
    add_optional_store(p, f"./{DEFAULT_DEMO_STORE}", "nanoloop demo STORE")
    p.add_argument("--rounds", type=positive_int, default=None, help="rounds in all (default: 3)")
    batch_size = p.add_argument("--batch-size", type=positive_int, default=None, metavar="N", help="formulations per round (default: 8)")
    add_old_spelling(p, "--batch", batch_size)
    p.set_defaults(handler=cmd_demo)

    p = subparsers.add_parser("run", help="run (or resume) a campaign from a TOML config")
    p.add_argument("config", metavar="CONFIG", help="the campaign's TOML config (`nanoloop init` writes an example)")
    add_optional_store(p, "./<name>-ledger, after the config's name", "nanoloop run CONFIG STORE")
    p.add_argument("--rounds", type=positive_int, default=None, help="rounds in all (default: the config's)")
    add_approval_options(p)
    p.add_argument("--dask", nargs="?", const="", default=None, metavar="ADDRESS", help="with [surrogate] model = \"ensemble\", "
                   "train its members in parallel on Dask: a local cluster, or the scheduler at ADDRESS")
    p.set_defaults(handler=cmd_run)

    for name, shown in (("schedule", True), ("serve", False)):  # serve: the old name, for one release
        helps = {"help": "advance a campaign by one round on a cron schedule (no work pool needed)"} if shown else {}
        p = subparsers.add_parser(name, **helps, description="Advance a campaign by one round at each time of a cron schedule, "
                                  "served from this process (no work pool needed).")
        p.add_argument("config", metavar="CONFIG", help="the campaign's TOML config")
        add_optional_store(p, "./<name>-ledger, after the config's name", "nanoloop schedule CONFIG STORE")
        p.add_argument("--cron", required=True, help='when to advance, e.g. "0 8 * * *" for 08:00 every day')
        add_approval_options(p)
        p.set_defaults(handler=cmd_schedule if shown else old_command("serve", "schedule", cmd_schedule))

    p = subparsers.add_parser("status", help="rounds, counts, best formulation and the model's prospective error")
    add_store(p)
    p.add_argument("--json", action="store_true", help="print one JSON object instead of tables")
    p.set_defaults(handler=cmd_status)

    p = subparsers.add_parser("approve", help="approve the batch awaiting approval (resumes the paused flow run)")
    add_store(p)
    p.add_argument("--reject", nargs="+", metavar="ID", help="formulation ids not to make")
    p.add_argument("--reason", default="", help="why they are rejected")
    p.add_argument("--edit", action="append", metavar="ID:VARIABLE=VALUE", help="change a value of a proposal before it is made")
    p.add_argument("--by", default="", help="who approves (recorded on the approval events; default: your OS user name)")
    p.set_defaults(handler=cmd_approve)

    p = subparsers.add_parser("doctor", help="verify every ledger part and the event log; --repair quarantines unreadable parts")
    add_store(p)
    p.add_argument("--repair", action="store_true", help="move unreadable parts to STORE/quarantine/ with a note; remove crash leftovers")
    p.set_defaults(handler=cmd_doctor)


def cmd_init(args) -> int:
    from nanoloop.loop.config import example_config_text

    folder = Path(args.dir)
    if folder.is_file():  # DIR holds a config, not a store
        raise InputError(f"{folder} is a file, not a folder")
    target = folder / "campaign.toml"
    if target.exists():
        raise InputError(f"{target} already exists; not overwriting it")
    folder.mkdir(parents=True, exist_ok=True)
    target.write_text(example_config_text(args.example))
    print(f"wrote {target}: edit it, then run `nanoloop run {target}`")
    return 0


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
    from nanoloop.loop.store.ledger import Ledger, check_location

    check_location(store)
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
    if args.batch_size:
        config = config.model_copy(update={"batch_size": args.batch_size})
    return _run_campaign(config, args.store or DEFAULT_DEMO_STORE, args.rounds, auto_approve=True)


def cmd_run(args) -> int:
    config = load_campaign_config(args.config)
    return _run_campaign(config, args.store or f"{config.name}-ledger", args.rounds, args.auto_approve, args.approval_timeout_s,
                         args.dask, amend=args.amend)


def cmd_schedule(args) -> int:
    from nanoloop.loop.campaign.campaign import Campaign
    from nanoloop.loop.store.ledger import Ledger, check_location

    config = load_campaign_config(args.config)
    from prefect.client.schemas.schedules import CronSchedule

    try:
        CronSchedule(cron=args.cron)
    except ValueError:
        raise InputError(f"--cron {args.cron!r}: not a cron expression (five fields, e.g. \"0 8 * * *\" for 08:00 every day)") from None
    store = args.store or f"{config.name}-ledger"
    check_location(store)
    Campaign(config, Ledger(store), amend=args.amend)
    from nanoloop.flows.rounds import round_flow

    round_flow.serve(
        name=f"{config.name}-rounds",
        cron=args.cron,
        parameters={"store": str(Path(store).absolute()) if "://" not in store else store, "auto_approve": args.auto_approve,
                    "approval_timeout_s": args.approval_timeout_s},
        description=f"Advance campaign {config.name} by one round",
    )
    return 0


def _print_status(store: str, as_json: bool) -> int:
    from nanoloop.loop.campaign.evaluation import campaign_status
    from nanoloop.loop.store.ledger import Ledger, check_location
    from nanoloop.loop.store.stored_config import read_stored_config

    check_location(store)
    ledger = Ledger(store, create=False, tolerant=True)  # only reads: the stored config is not written back
    config = read_stored_config(ledger)
    status = campaign_status(ledger, config.target, config.name)
    for path, reason in ledger.unreadable.items():
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
    from nanoloop.loop.campaign.review import parse_edits
    from nanoloop.loop.store.ledger import check_location

    check_location(args.store)
    edits = parse_edits(args.edit)
    print(approve_from_terminal(Campaign.open(args.store), args.reject or [], args.reason, edits, by=args.by or _os_user()))
    return 0


def _os_user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def cmd_doctor(args) -> int:
    from nanoloop.loop.store.doctor import check_store
    from nanoloop.loop.store.ledger import check_location

    check_location(args.store)
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

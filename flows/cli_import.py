"""``nanoloop import STORE FILE``: a lab's earlier experiments into a campaign, as measured formulations.

The store's own config is used (the one ``nanoloop run`` stored); a store without a
campaign yet needs ``--config CAMPAIGN.toml`` and is started the way ``nanoloop run``
starts it, so ``nanoloop run CAMPAIGN.toml STORE`` continues it with round 0,
model-driven because the imported curves train the surrogate.

A bad row refuses the whole file (one line naming file, row, column; exit 2; nothing
written) unless ``--skip-bad``. Importing the same file again writes nothing.
"""

from __future__ import annotations

import json
from pathlib import Path

from nanoloop.flows.cli_args import add_release_unit, add_store, add_time_unit, load_campaign_config
from nanoloop.loop.errors import InputError


def register(subparsers) -> None:
    """Add the ``import`` command to the main CLI's subparsers."""
    p = subparsers.add_parser("import", help="import earlier experiments (CSV or Excel, long or wide) as measured formulations")
    add_store(p)
    p.add_argument("file", help="CSV or .xlsx: recipes (one column per design variable), release per time, optional characterization")
    p.add_argument("--config", default=None, metavar="CAMPAIGN.toml", help="the campaign's config (needed when the store has none yet)")
    p.add_argument("--map", action="append", default=[], metavar="HEADER=VARIABLE", help="read a file column as a design variable "
                   "or characterization field, e.g. --map \"Polymer MW (kDa)=polymer_mw_kda\" (repeatable)")
    p.add_argument("--map-file", default=None, metavar="F", help="mapping file: TOML (\"Header\" = \"variable\") or CSV (header,variable)")
    p.add_argument("--set", action="append", default=[], metavar="VARIABLE=VALUE", help="value of a design variable the file lacks, the same for every row")
    add_time_unit(p, help="unit of the times (default: from the headers, else h)")
    add_release_unit(p, help="release in %% or as a fraction of the dose (default: detected)")
    p.add_argument("--layout", choices=["auto", "long", "wide"], default="auto", help="one row per formulation and time (long) or one column per time (wide)")
    p.add_argument("--sheet", default=None, help="Excel sheet (default: the first)")
    p.add_argument("--skip-bad", action="store_true", help="import the good rows and report the bad ones (default: refuse the file)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of lines")
    p.set_defaults(handler=cmd_import)


def _campaign_config(args):
    """The config to import under: the store's own, or --config (checked against the store's when both exist)."""
    from nanoloop.loop.store.ledger import Ledger, check_location
    from nanoloop.loop.store.stored_config import CONFIG_BLOB, read_stored_config

    check_location(args.store)
    if args.config:
        return load_campaign_config(args.config)
    try:
        ledger = Ledger(args.store, create=False)
    except InputError:
        ledger = None
    if ledger is None or ledger.read_blob(CONFIG_BLOB) is None:
        raise InputError(f"store {args.store!r} holds no campaign yet: pass --config CAMPAIGN.toml to start it with this import")
    return read_stored_config(ledger)


def cmd_import(args) -> int:
    from nanoloop.loop.campaign.campaign import Campaign
    from nanoloop.loop.store.experiments import parse_assignments, read_experiments, read_mapping
    from nanoloop.loop.store.importing import import_experiments, refuse_bad_rows
    from nanoloop.loop.store.ledger import Ledger, LedgerBusy

    config = _campaign_config(args)
    mapping = read_mapping(args.map_file) if args.map_file else {}
    mapping.update(parse_assignments(args.map, "--map"))
    fixed = parse_assignments(args.set, "--set")
    experiments = read_experiments(args.file, config.design_space(), mapping, fixed, time_unit=args.time_unit,
                                   release_unit=args.release_unit, layout=args.layout, sheet=args.sheet, campaign=config.name)
    if not args.skip_bad:
        refuse_bad_rows(experiments)  # before the store is touched: a bad file writes nothing, not even a new folder
    if experiments.recipes.empty:
        raise InputError(f"{Path(args.file).name}: no usable formulation" + (f"; first bad row: {experiments.bad_rows[0]}" if experiments.bad_rows else ""))
    ledger = Ledger(args.store)
    ledger.check_writable()
    campaign = Campaign(config, ledger)  # stores the config as `nanoloop run` would; a changed space or target is refused
    try:
        report = import_experiments(campaign, experiments, skip_bad=args.skip_bad)
    except LedgerBusy as busy:
        raise InputError(str(busy)) from None
    if args.json:
        print(json.dumps({"store": args.store, **report.to_dict()}, indent=1))
        return 0
    for note in report.notes:
        print(f"note: {note}")
    for fid, reasons in report.outside_space.items():
        print(f"outside the design space: {fid} ({', '.join(experiments.source_rows[fid])}): {'; '.join(reasons)}")
    for fid, why in report.skipped.items():
        print(f"skipped {fid}: {why}")
    for bad in report.bad_rows:
        print(f"bad row left out: {bad}")
    print(report.summary_line())
    if report.new:
        print(f"next: `nanoloop status {args.store}`, then `nanoloop run {args.config or 'CAMPAIGN.toml'} {args.store}` proposes "
              "the next designed round from a model trained on these curves")
    return 0

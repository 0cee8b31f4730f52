"""One CLI vocabulary: STORE positional everywhere, units in option names, one set of unit values;
the old spellings work for one release and each prints one note naming the new one."""

import argparse
import ast
import json
from pathlib import Path

import pytest

from nanoloop.flows.cli import build_parser, main
from nanoloop.loop.config import example_config_text

ROOT = Path(__file__).resolve().parents[2]
NOTE = "nanoloop: note: "

# (old spelling, the same request in the new spelling, what the note names)
OLD_AND_NEW = [
    (["demo", "--store", "S"], ["demo", "S"], "a positional STORE (`nanoloop demo STORE`)"),
    (["demo", "--batch", "2"], ["demo", "--batch-size", "2"], "--batch-size"),
    (["run", "c.toml", "--store", "S"], ["run", "c.toml", "S"], "a positional STORE (`nanoloop run CONFIG STORE`)"),
    (["run", "c.toml", "--approval-timeout", "5"], ["run", "c.toml", "--approval-timeout-s", "5"], "--approval-timeout-s"),
    (["schedule", "c.toml", "--store", "S", "--cron", "0 8 * * *"], ["schedule", "c.toml", "S", "--cron", "0 8 * * *"],
     "a positional STORE (`nanoloop schedule CONFIG STORE`)"),
    (["design", "--store", "S", "--target", "t.csv"], ["design", "S", "--target", "t.csv"],
     "a positional STORE (`nanoloop design STORE --target TARGET.csv`)"),
    (["design", "S", "--target", "t.csv", "--pool", "64"], ["design", "S", "--target", "t.csv", "--pool-size", "64"], "--pool-size"),
    (["dashboard", "S", "--poll", "1.5"], ["dashboard", "S", "--poll-s", "1.5"], "--poll-s"),
    (["predict", "S", "f.csv", "--times", "24", "48"], ["predict", "S", "f.csv", "--times-hours", "24", "48"], "--times-hours"),
    (["kinetics", "fit", "c.csv", "--release-scale", "percent"], ["kinetics", "fit", "c.csv", "--release-unit", "pct"], "--release-unit"),
    (["kinetics", "compare", "c.csv", "--release-scale", "fraction"], ["kinetics", "compare", "c.csv", "--release-unit", "fraction"],
     "--release-unit"),
    (["kinetics", "fit", "c.csv", "--release-unit", "percent"], ["kinetics", "fit", "c.csv", "--release-unit", "pct"], "--release-unit pct"),
    (["import", "S", "f.csv", "--time-unit", "days"], ["import", "S", "f.csv", "--time-unit", "d"], "--time-unit d"),
]


def _request(argv) -> dict:
    return {k: v for k, v in vars(build_parser().parse_args(argv)).items() if k != "handler"}


@pytest.mark.parametrize("old, new, named", OLD_AND_NEW, ids=[" ".join(old) for old, _, _ in OLD_AND_NEW])
def test_an_old_spelling_makes_the_same_request_with_one_note(old, new, named, capsys):
    assert _request(old) == _request(new)
    notes = capsys.readouterr().err.strip().splitlines()
    assert len(notes) == 1 and notes[0].startswith(NOTE) and f"is now {named};" in notes[0], notes
    assert "works until the next release" in notes[0]
    _request(new)
    assert capsys.readouterr().err == ""  # the new spelling says nothing


def test_serve_is_the_old_name_of_schedule(tmp_path, capsys):
    config = tmp_path / "campaign.toml"
    config.write_text(example_config_text())
    store = tmp_path / "store"
    assert main(["serve", str(config), str(store), "--cron", "not a cron"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0] == f"{NOTE}`nanoloop serve` is now `nanoloop schedule`; the old spelling works until the next release"
    assert "--cron 'not a cron': not a cron expression" in err[1]
    assert not store.exists()


def test_the_old_store_option_still_reaches_the_store(tmp_path, capsys):
    path = tmp_path / "ledger"
    path.write_text("not a folder")
    assert main(["demo", "--store", str(path)]) == 2
    err = capsys.readouterr().err
    assert "is now a positional STORE" in err and f"store '{path}' is a file, not a folder" in err
    assert path.read_text() == "not a folder"
    target = tmp_path / "t.csv"
    target.write_text("time_hours,release_pct\n24,20\n72,40\n168,65\n")
    assert main(["design", "--store", str(tmp_path / "nowhere"), "--target", str(target)]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_store_given_twice_is_refused(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["run", "c.toml", "S1", "--store", "S2"])
    assert exit_.value.code == 2
    assert "given twice: 'S1' and --store 'S2'" in capsys.readouterr().err


def test_store_after_options_is_found():
    """`run CONFIG --auto-approve STORE`: Python 3.11's argparse alone calls STORE unrecognized."""
    args = build_parser().parse_args(["run", "c.toml", "--auto-approve", "--rounds", "2", "S"])
    assert (args.config, args.store, args.rounds, args.auto_approve) == ("c.toml", "S", 2, True)
    assert build_parser().parse_args(["run", "c.toml"]).store is None  # the handler then uses ./<name>-ledger
    with pytest.raises(SystemExit):
        build_parser().parse_args(["run", "c.toml", "S", "--auto-approve", "extra"])


def _commands() -> dict[str, argparse.ArgumentParser]:
    def walk(parser, prefix=()):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from walk(sub, (*prefix, name))
                return
        yield " ".join(prefix), parser

    return dict(walk(build_parser()))


def test_store_is_positional_in_every_command_that_takes_one():
    with_store = []
    for name, parser in _commands().items():
        store = [a for a in parser._actions if a.dest == "store"]
        if not store:
            continue
        with_store.append(name)
        shown = [a for a in store if a.help != argparse.SUPPRESS]
        assert len(shown) == 1 and shown[0].option_strings == [] and shown[0].metavar == "STORE", name
    assert {"demo", "run", "schedule", "status", "approve", "doctor", "import", "batch", "export", "explain", "predict",
            "design", "dashboard", "report"} <= set(with_store)


@pytest.mark.parametrize("command, new, old", [
    (["run"], ["STORE", "--approval-timeout-s"], ["--store", "--approval-timeout "]),
    (["schedule"], ["STORE", "--approval-timeout-s", "--cron"], ["--store", "--approval-timeout "]),
    (["demo"], ["STORE", "--batch-size"], ["--store", "--batch "]),
    (["design"], ["STORE", "--pool-size"], ["--store", "--pool "]),
    (["dashboard"], ["STORE", "--poll-s"], ["--poll "]),
    (["predict"], ["STORE", "--times-hours"], ["--times "]),
    (["kinetics", "fit"], ["--time-unit {auto,min,h,d}", "--release-unit {auto,pct,fraction}"], ["--release-scale", "percent"]),
    (["kinetics", "compare"], ["--time-unit {auto,min,h,d}", "--release-unit {auto,pct,fraction}"], ["--release-scale", "percent"]),
    (["import"], ["--time-unit {auto,min,h,d}", "--release-unit {auto,pct,fraction}"], ["days"]),
])
def test_help_shows_the_new_names_only(command, new, old, capsys):
    with pytest.raises(SystemExit):
        main([*command, "--help"])
    text = capsys.readouterr().out
    assert all(name in text for name in new), text
    assert not any(name in text for name in old), text


def test_the_command_list_says_schedule_not_serve(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines() if line.startswith("    ") and line[4:5].isalpha()]
    assert "schedule" in listed and "server" in listed and "serve" not in listed


def test_release_unit_pct_reaches_the_reader(tmp_path, capsys):
    """Values below 1.5 read as a fraction by default; --release-unit pct keeps them as %."""
    csv = tmp_path / "c.csv"
    csv.write_text("time_hours,release\n1,0.2\n4,0.5\n24,0.9\n")
    assert main(["kinetics", "fit", str(csv), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["release_scale"] == "fraction"
    assert main(["kinetics", "fit", str(csv), "--release-unit", "pct", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["release_scale"] == "percent"


def test_approve_edit_reads_spaces_as_batch_edit_does(tmp_path, capsys):
    from nanoloop.adapters.registry import build_instruments
    from nanoloop.loop.campaign.campaign import Campaign
    from nanoloop.loop.config import default_config
    from nanoloop.loop.store.ledger import Ledger

    campaign = Campaign(default_config().model_copy(update={"name": "spaces", "batch_size": 2}), Ledger(tmp_path), build_instruments)
    fid = campaign.propose(0)[0]
    assert main(["approve", str(tmp_path), "--edit", f"{fid}: particle_size_nm = 150"]) == 0, capsys.readouterr().err
    forms = campaign.formulations()
    edit = forms[forms["origin"] == f"edit-of:{fid}"]
    assert len(edit) == 1 and json.loads(edit["parameters_json"].iloc[0])["particle_size_nm"] == 150
    assert main(["approve", str(tmp_path), "--edit", "no assignment"]) == 2
    assert "--edit 'no assignment': expected ID:VARIABLE=VALUE" in capsys.readouterr().err


def test_no_flows_module_imports_the_entry_point():
    """flows/cli.py registers the other command modules; none of them imports it back (no cycle)."""
    importers = []
    for path in sorted((ROOT / "flows").glob("*.py")):
        if path.name == "cli.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""] + [f"{node.module}.{a.name}" for a in node.names]
            if "nanoloop.flows.cli" in names:
                importers.append(path.name)
    assert importers == []

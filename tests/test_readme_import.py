"""The README's "Start from what the lab already has" commands run as written on the shipped example."""

import re
import shlex
from pathlib import Path

from nanoloop.flows.cli import main

ROOT = Path(__file__).resolve().parents[1]


def _commands() -> list[list[str]]:
    match = re.search(r"<!-- example: import -->\n```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    assert match, "README lost its import example"
    return [shlex.split(line.split("#")[0]) for line in match.group(1).splitlines() if line.strip()]


def test_readme_import_commands_run_on_the_shipped_example(tmp_path, monkeypatch, capsys):
    commands = _commands()
    assert [c[1] for c in commands] == ["import", "import", "status", "run"]
    assert commands[-1][1:] == ["run", "loop/examples/demo.toml", "lab-history", "--rounds", "1", "--auto-approve"]
    monkeypatch.chdir(ROOT)  # the example's paths are relative to the repository
    store = str(tmp_path / "lab-history")
    outputs = []
    # `nanoloop run` (a Prefect flow) is left out here: tests/loop/test_import_store.py runs that round in-process
    for command in commands[:3]:
        args = [store if a == "lab-history" else a for a in command[1:]]
        assert main(args) == 0, args
        outputs.append(capsys.readouterr().out)
    assert "imported earlier_formulations.csv: 24 new, 0 already imported" in outputs[0]
    assert "note: wide layout: 8 time columns" in outputs[0] and "release read as percent" in outputs[0]
    assert "imported earlier_formulations.csv: 0 new, 24 already imported" in outputs[1]
    assert "imported: 24 formulations from earlier_formulations.csv" in " ".join(outputs[2].split())
    assert "round -1" not in outputs[2]

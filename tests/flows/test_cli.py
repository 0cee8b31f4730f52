"""The command line: exit codes and one-line errors for bad input; nothing written on error."""


import pytest

from nanoloop.flows.cli import main
from nanoloop.loop.config import example_config_text


def test_init_writes_the_commented_example(tmp_path, capsys):
    assert main(["init", str(tmp_path / "c")]) == 0
    assert (tmp_path / "c" / "campaign.toml").read_text() == example_config_text()
    assert main(["init", str(tmp_path / "c")]) == 2
    assert "already exists" in capsys.readouterr().err


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda t: t.replace("batch_size = 8", "batch_size = 8\ncolour = 1"), "colour: unknown key"),
        (lambda t: t.replace("min = 10\nmax = 120", "min = 130\nmax = 120"), "min (130) must be below max (120)"),
        (lambda t: t.replace("release_pct = [20, 40, 65, 80, 95]", "release_pct = [20, 40, 35, 80, 95]"), "must not decrease"),
    ],
)
def test_run_with_a_bad_config_exits_2_and_writes_nothing(tmp_path, capsys, edit, message):
    config = tmp_path / "campaign.toml"
    config.write_text(edit(example_config_text()))
    store = tmp_path / "store"
    assert main(["run", str(config), str(store)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not store.exists()


def test_store_that_is_a_file(tmp_path, capsys):
    path = tmp_path / "ledger"
    path.write_text("not a folder")
    assert main(["demo", str(path)]) == 2
    assert "is a file" in capsys.readouterr().err
    assert main(["status", str(path)]) == 2
    assert path.read_text() == "not a folder"


def test_status_of_a_store_without_campaign(tmp_path, capsys):
    assert main(["status", str(tmp_path / "nothing")]) == 2
    assert "does not exist" in capsys.readouterr().err

"""`nanoloop --help` and `nanoloop status STORE` start without importing torch (a command imports what it needs)."""

import json
import subprocess
import sys

import pytest

PROBE = ("import json, sys\n"
         "from nanoloop.flows.cli import main\n"
         "try:\n"
         "    rc = main(sys.argv[1:])\n"
         "except SystemExit as done:\n"
         "    rc = done.code\n"
         "print(json.dumps({'rc': rc, 'torch': 'torch' in sys.modules, 'prefect': 'prefect' in sys.modules}), file=sys.stderr)\n")


def _imports(*argv) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=300)
    return json.loads(done.stderr.strip().splitlines()[-1])


@pytest.fixture
def small_store(campaign_store):
    """The session's small campaign (tests/conftest.py): measured rounds, trained models, a batch awaiting approval."""
    return campaign_store[0]


def test_help_imports_neither_torch_nor_prefect():
    assert _imports("--help") == {"rc": 0, "torch": False, "prefect": False}
    assert _imports("kinetics", "fit", "--help") == {"rc": 0, "torch": False, "prefect": False}


def test_status_runs_from_the_probe(small_store):
    assert _imports("status", str(small_store))["rc"] == 0


def test_status_does_not_import_torch(small_store):
    assert _imports("status", str(small_store)) == {"rc": 0, "torch": False, "prefect": False}


def test_status_leaves_the_store_byte_identical_even_with_a_reindented_config(small_store, tmp_path):
    """Looking never writes: status reads the stored config, it does not store it again."""
    import shutil
    from pathlib import Path

    store = tmp_path / "store"
    shutil.copytree(small_store, store)
    config = store / "blobs" / "campaign.json"
    config.write_text(json.dumps(json.loads(config.read_text()), indent=4))  # the same config, other bytes

    def files(root: Path) -> dict:
        return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and p.name != ".lock"}

    before = files(store)
    assert _imports("status", str(store))["rc"] == 0
    assert _imports("status", str(store), "--json")["rc"] == 0
    assert files(store) == before

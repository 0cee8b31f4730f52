"""Bad or hostile campaign configs: one line, exit 2, nothing stored, and a plug-in path never runs code it should not.

One parametrized row per probe: the next probe adds a row.
"""

from __future__ import annotations

import textwrap

import pytest

from hostile_helpers import assert_one_line_error, config_text, run_cli

BROKEN_LAB = textwrap.dedent('''
    class NoCollect:
        name, kind = "broken", "synthesis"
        def __init__(self):
            open(__import__("os").environ["PWNED_PATH"], "w").close()  # must never run: the protocol fails on the class
        def describe(self): return {}
        def submit(self, items, timeout_s=30.0): pass
        def status(self, keys, timeout_s=30.0): return {}
        def cancel(self, keys, timeout_s=30.0): pass

    def make(path):
        open(path, "w").close()  # a factory function named by a config is never called
''')


def _instrument(kind: str, options: str = "{}", trusted: str = "") -> str:
    text = config_text()
    text = text.replace('[instruments.synthesis]\nkind = "simulated-synthesis"\noptions = {}',
                        f'[instruments.synthesis]\nkind = "{kind}"\noptions = {options}')
    if trusted:
        text = text.replace("[instruments.synthesis]", f"trusted_plugins = {trusted}\n[instruments.synthesis]", 1)
    return text


CASES = {
    # name: (config bytes or "DIR", env, words in the error)
    "non-utf8": (config_text().encode("utf-8").replace(b"hostile", b"host\xe9le"), {}, ["not UTF-8"]),
    "directory": ("DIR", {}, ["is a folder"]),
    "infeasible-constraint": (config_text().replace("max = 0.4", "max = -1").encode(), {}, ["can never hold"]),
    "nan-bound": (config_text().replace("max = 0.4", "max = nan").encode(), {}, ["finite"]),
    "nan-coefficient": (config_text().replace("peg_fraction = 1.0, ph", "peg_fraction = nan, ph").encode(), {}, ["finite"]),
    "untrusted-plugin": (_instrument("lab_of_strangers:Robot").encode(), {}, ["not trusted", "trusted_plugins"]),
    "unknown-plugin-module": (_instrument("no_such_lab.robot:Robot", trusted='["no_such_lab"]').encode(), {}, ["cannot import", "no_such_lab"]),
    "plugin-fails-protocol": (_instrument("broken_lab:NoCollect", trusted='["broken_lab"]').encode(), {}, ["collect"]),
    "os-system": (_instrument("os:system", '{ command = "touch PWNED" }').encode(), {}, ["os:system"]),
    "os-system-trusted-env": (_instrument("os:system", '{ command = "touch PWNED" }').encode(), {"NANOLOOP_TRUSTED_PLUGINS": "*"}, ["os:system"]),
    "os-system-trusted-config": (_instrument("os:system", '{ command = "touch PWNED" }', trusted='["os"]').encode(), {}, ["os:system"]),
    "subprocess-popen": (_instrument("subprocess:Popen", '{ args = ["touch", "PWNED"] }', trusted='["subprocess"]').encode(), {"NANOLOOP_TRUSTED_PLUGINS": "1"}, ["subprocess:Popen"]),
    "builtins-exec": (_instrument("builtins:exec", '{ source = "open(\'PWNED\', \'w\')" }').encode(), {"NANOLOOP_TRUSTED_PLUGINS": "*"}, ["builtins:exec"]),
    "unknown-builtin-name": (_instrument("simulated-magic").encode(), {}, ["simulated-magic", "built-in"]),
    "trusted-function-not-class": (_instrument("broken_lab:make", '{ path = "PWNED" }', trusted='["broken_lab"]').encode(), {}, ["class, not a function"]),
    "nanoloop-internal-path": (_instrument("nanoloop.flows.cli:main").encode(), {"NANOLOOP_TRUSTED_PLUGINS": "*"}, ["never loaded by import path"]),
    "trusted-list-is-a-string": (_instrument("simulated-synthesis", trusted='"broken_lab"').encode(), {}, ["trusted_plugins", "valid list"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.slow  # the real command line, a process per probe
def test_bad_config_is_one_line_and_nothing_runs_or_is_stored(case, tmp_path):
    content, env, words = CASES[case]
    (tmp_path / "broken_lab.py").write_text(BROKEN_LAB)
    config = tmp_path / "campaign.toml"
    if content == "DIR":
        config.mkdir()
    else:
        config.write_bytes(content)
    store = tmp_path / "store"
    env = {**env, "PYTHONPATH": str(tmp_path), "PWNED_PATH": str(tmp_path / "PWNED")}
    result = run_cli("run", config, store, "--auto-approve", "--rounds", "1", env=env, cwd=tmp_path, timeout=120)
    assert_one_line_error(result, *words)
    assert not (tmp_path / "PWNED").exists(), "the config ran code"
    assert not store.exists(), "something was stored"


@pytest.mark.slow  # the real command line, a process per probe
def test_serve_with_a_bad_cron_writes_nothing(tmp_path):
    config = tmp_path / "campaign.toml"
    config.write_text(config_text())
    result = run_cli("schedule", config, tmp_path / "store", "--cron", "not a cron", timeout=120)
    assert_one_line_error(result, "not a cron")
    assert not (tmp_path / "store").exists()


@pytest.mark.slow  # the real command line, a process per probe
def test_dask_address_nobody_answers(tmp_path):
    from hostile_helpers import free_port

    config = tmp_path / "campaign.toml"
    config.write_text(config_text())
    result = run_cli("run", config, tmp_path / "store", "--auto-approve", "--dask", f"tcp://127.0.0.1:{free_port()}", timeout=120)
    assert_one_line_error(result, "no Dask scheduler answers")
    assert not (tmp_path / "store").exists()


def test_trusted_plugin_by_config_key_loads(tmp_path, monkeypatch):
    """The trust rule lets a named package through (and only it)."""
    from nanoloop.adapters.registry import build_instruments
    from nanoloop.loop.config import parse_config
    import tomllib

    (tmp_path / "good_lab.py").write_text("from nanoloop.adapters.simulated.synthesis import SimulatedSynthesis as Robot\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("NANOLOOP_TRUSTED_PLUGINS", raising=False)
    config = parse_config(tomllib.loads(_instrument("good_lab:Robot", trusted='["good_lab"]')))
    assert build_instruments(config)["synthesis"].kind == "synthesis"
    from nanoloop.loop.errors import InputError

    with pytest.raises(InputError, match="not trusted"):
        build_instruments(parse_config(tomllib.loads(_instrument("good_lab:Robot"))))
    monkeypatch.setenv("NANOLOOP_TRUSTED_PLUGINS", "good_lab")
    assert build_instruments(parse_config(tomllib.loads(_instrument("good_lab:Robot"))))["synthesis"].kind == "synthesis"


def test_installed_plugin_by_entry_point_name(tmp_path, monkeypatch):
    """A package installed under the entry-point group nanoloop.instruments is used by name, no trust key needed."""
    from nanoloop.adapters.registry import load_instrument

    (tmp_path / "pip_lab.py").write_text("from nanoloop.adapters.simulated.synthesis import SimulatedSynthesis as Robot\n")
    info = tmp_path / "pip_lab-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pip-lab\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[nanoloop.instruments]\npip-lab-robot = pip_lab:Robot\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("NANOLOOP_TRUSTED_PLUGINS", raising=False)
    assert load_instrument("pip-lab-robot", {"seed": 1}, expected_kind="synthesis", trusted=()).kind == "synthesis"

"""Imports go one way: flows -> loop, adapters, dashboard; adapters -> loop; dashboard -> loop.

loop/ (the core) never imports adapters, flows, dashboard or prefect;
adapters/ never imports flows or dashboard; dashboard/ never imports flows or adapters.
"""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FORBIDDEN = {
    "loop": {"nanoloop.adapters", "nanoloop.flows", "nanoloop.dashboard", "prefect", "prefect_dask"},
    "adapters": {"nanoloop.flows", "nanoloop.dashboard", "prefect"},
    "dashboard": {"nanoloop.flows", "nanoloop.adapters", "prefect"},
}
OLD_NAMES = {"loop", "adapters", "flows", "dashboard"}  # only as nanoloop.<name> after install


def imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.append(node.module or "")
    return names


def python_files(folder: str) -> list[Path]:
    return sorted((ROOT / folder).rglob("*.py"))


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_imports_go_one_way(folder):
    files = python_files(folder)
    assert files, f"no python files under {folder}/"
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in files for name in imported_modules(path)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[folder])
    ]
    assert wrong == []


@pytest.mark.parametrize("folder", ["loop", "adapters", "flows", "dashboard", "nanoloop", "tests", "bench"])
def test_code_imports_only_the_nanoloop_name(folder):
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in python_files(folder) for name in imported_modules(path)
        if name.split(".")[0] in OLD_NAMES
    ]
    assert wrong == []


def test_the_rule_catches_a_wrong_import(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("from nanoloop.adapters.registry import build_instruments\nimport prefect\n")
    assert imported_modules(bad) == ["nanoloop.adapters.registry", "prefect"]

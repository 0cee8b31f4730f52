"""The architecture, enforced: imports go one way, between packages and between the layers of loop/, with no cycle.

Between packages: flows -> loop, adapters, dashboard; adapters -> loop; dashboard -> loop.
loop/ never imports adapters, flows, dashboard or prefect; adapters never import flows
or dashboard; dashboard never imports flows or adapters.

Inside loop/ the subpackages are layers (lowest first): the root and its errors and
fault points, io, kinetics and lab, models, design, explain, config, store, campaign.
A module imports its own package or lower layers only (peers of one rank do not
import each other). Every import counts: relative ones and those inside functions.
No module of the repository, bench/ included, takes part in an import cycle, and no
module imports another module's private name.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = {"loop": "nanoloop.loop", "adapters": "nanoloop.adapters", "flows": "nanoloop.flows", "dashboard": "nanoloop.dashboard",
            "nanoloop": "nanoloop", "bench": "bench"}
FORBIDDEN = {
    "loop": {"nanoloop.adapters", "nanoloop.flows", "nanoloop.dashboard", "prefect", "prefect_dask"},
    "adapters": {"nanoloop.flows", "nanoloop.dashboard", "prefect"},
    "dashboard": {"nanoloop.flows", "nanoloop.adapters", "prefect"},
}
OLD_NAMES = {"loop", "adapters", "flows", "dashboard"}  # only as nanoloop.<name> after install
#: the layers of loop/ (part after ``nanoloop.loop.``; "" is the package root): a module imports only its own or lower ranks
LAYERS = {"": 0, "errors": 0, "faults": 0, "io": 1, "kinetics": 2, "lab": 2, "models": 3, "design": 4, "explain": 5,
          "config": 6, "store": 7, "campaign": 8, "instruments": 9}  # instruments: the port's old path, deprecated, imported by no one


def module_name(path: Path, root: Path = ROOT) -> str:
    """``loop/design/space.py`` -> ``nanoloop.loop.design.space``; ``bench/campaign_lab.py`` -> ``bench.campaign_lab``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([PACKAGES[parts[0]], *parts[1:]])


def imports_of(path: Path, name: str, known: set[str]) -> list[str]:
    """Every module ``path`` (module ``name``) imports, absolute or relative, at any depth of its code.

    ``from package import module`` counts as importing the module (not the package) when it is in ``known``.
    In bench/, a bare ``import campaign_stats`` names the bench module beside it.
    """
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found += [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            submodules = [f"{module}.{a.name}" for a in node.names if f"{module}.{a.name}" in known]
            found += submodules if len(submodules) == len(node.names) else [module, *submodules]
    if name.startswith("bench."):
        found = [f"bench.{m}" if f"bench.{m}" in known else m for m in found]
    return found


def private_names(path: Path) -> list[str]:
    """``module:name`` for each private name (``_x``, not dunder) imported from another module of the project."""
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("nanoloop")):
            out += [f"{node.module}:{a.name}" for a in node.names if a.name.startswith("_") and not a.name.startswith("__")]
    return out


def project_modules(root: Path = ROOT) -> dict[str, Path]:
    return {module_name(p, root): p for folder in PACKAGES if (root / folder).is_dir() for p in sorted((root / folder).rglob("*.py"))
            if ".venv" not in p.parts}


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    """Project module -> the project modules it imports."""
    modules = project_modules(root)
    known = set(modules)
    return {name: {m for m in imports_of(path, name, known) if m in known and m != name} for name, path in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm, iterative)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], [0]
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = counter[0]
        counter[0] += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter[0]
                    counter[0] += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def layer_of(module: str) -> tuple[str, int] | None:
    """(package inside loop/, its rank) of a ``nanoloop.loop`` module, None outside loop/."""
    if module != "nanoloop.loop" and not module.startswith("nanoloop.loop."):
        return None
    part = module.removeprefix("nanoloop.loop").lstrip(".").split(".")[0]
    return part, LAYERS[part]


def layer_violations(graph: dict[str, set[str]]) -> list[str]:
    wrong = []
    for module, imported in graph.items():
        here = layer_of(module)
        if here is None:
            continue
        for other in imported:
            there = layer_of(other)
            if there is not None and there[0] != here[0] and there[1] >= here[1]:
                wrong.append(f"{module} ({here[0]}, rank {here[1]}) imports {other} ({there[0]}, rank {there[1]})")
    return sorted(wrong)


def test_every_loop_subpackage_has_a_layer():
    parts = {p.name for p in (ROOT / "loop").iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    parts |= {p.stem for p in (ROOT / "loop").glob("*.py") if p.stem != "__init__"}
    assert parts <= set(LAYERS), f"give {sorted(parts - set(LAYERS))} a rank in LAYERS"


def test_loop_layers_import_downwards_only():
    assert layer_violations(import_graph()) == []


def test_no_import_cycle_anywhere_bench_included():
    assert cycles(import_graph()) == []


@pytest.mark.parametrize("folder", sorted(FORBIDDEN))
def test_imports_go_one_way_between_packages(folder):
    known = set(project_modules())
    wrong = [
        f"{path.relative_to(ROOT)} imports {name}"
        for path in sorted((ROOT / folder).rglob("*.py")) for name in imports_of(path, module_name(path), known)
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN[folder])
    ]
    assert wrong == []


@pytest.mark.parametrize("folder", ["loop", "adapters", "flows", "dashboard", "nanoloop", "tests", "bench"])
def test_code_imports_only_the_nanoloop_name(folder):
    wrong = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and node.level == 0 else []
            wrong += [f"{path.relative_to(ROOT)} imports {n}" for n in names if n.split(".")[0] in OLD_NAMES]
    assert wrong == []


def test_no_module_takes_another_modules_private_names():
    wrong = [f"{path.relative_to(ROOT)}: {name}" for path in project_modules().values() for name in private_names(path)]
    assert wrong == []


# -- the checks themselves catch what they are for ---------------------------------------------------------------
def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return tmp_path


def test_the_checks_catch_an_upward_import_inside_a_function_a_relative_import_and_a_cycle(tmp_path):
    root = _tree(tmp_path, {
        "loop/__init__.py": "",
        "loop/design/__init__.py": "",
        "loop/design/space.py": "def f():\n    from nanoloop.loop.store import ledger\n",  # upward, inside a function
        "loop/store/__init__.py": "",
        "loop/store/ledger.py": "from ..design import space\n",  # relative, downward: allowed
        "loop/models/__init__.py": "",
        "loop/models/a.py": "from . import b\n",
        "loop/models/b.py": "import nanoloop.loop.models.a\n",  # a <-> b
        "bench/x.py": "import y\n",
        "bench/y.py": "from x import run\n",  # bench scripts importing each other by bare name
    })
    graph = import_graph(root)
    assert graph["nanoloop.loop.store.ledger"] == {"nanoloop.loop.design.space"}
    assert layer_violations(graph) == ["nanoloop.loop.design.space (design, rank 4) imports nanoloop.loop.store.ledger (store, rank 7)"]
    assert sorted(cycles(graph)) == [["bench.x", "bench.y"], ["nanoloop.loop.design.space", "nanoloop.loop.store.ledger"],
                                     ["nanoloop.loop.models.a", "nanoloop.loop.models.b"]]


def test_the_private_name_check_catches_one(tmp_path):
    root = _tree(tmp_path, {"flows/cli_x.py": "from nanoloop.flows.cli import _load_config, main\nfrom . import __version__\n"})
    assert private_names(root / "flows/cli_x.py") == ["nanoloop.flows.cli:_load_config"]


def test_opening_a_campaign_and_reading_its_status_never_load_torch():
    """torch (about a second to import) loads with the first model built or read, or the first batch chosen (modAL imports it)."""
    import subprocess
    import sys

    code = ("import sys; import nanoloop.loop.campaign.campaign, nanoloop.loop.campaign.evaluation, nanoloop.loop.campaign.review, "
            "nanoloop.loop.store.records; print(sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'))[:3])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_every_package_is_in_the_install():
    """A subpackage left out of pyproject.toml's list installs nowhere (the editable install hides it)."""
    import tomllib

    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {module_name(p.parent / "__init__.py") for folder in ("loop", "adapters", "flows", "dashboard", "nanoloop")
             for p in (ROOT / folder).rglob("__init__.py")}
    assert found - listed == set()

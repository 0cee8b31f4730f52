"""The README's Python API example runs as written."""

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_api_example_runs(tmp_path, monkeypatch, capsys):
    match = re.search(r"<!-- example: python-api -->\n```python\n(.*?)```", README.read_text(), re.S)
    assert match, "README lost its Python API example"
    monkeypatch.chdir(tmp_path)
    exec(compile(match.group(1), "README.md:python-api", "exec"), {})
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 4  # best law and its parameters, f2, two designs
    assert float(printed[1].strip("[]")) > 50  # two similar profiles
    assert (tmp_path / "api-demo-ledger" / "curves").is_dir() and (tmp_path / "api-demo-model.pt").is_file()
    assert [line.split()[0] for line in printed[2:]] == ["1", "2"]

"""Helpers for the hostile-input probes: run the real command line, check for one line and nothing written."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

from nanoloop.loop.config import example_config_text

CLI = str(Path(sys.executable).with_name("nanoloop"))


def config_text(name: str = "hostile", batch: int = 2, extra_instruments: str = "") -> str:
    text = example_config_text().replace('name = "demo-sustained-release"', f'name = "{name}"').replace("batch_size = 8", f"batch_size = {batch}")
    if extra_instruments:
        text = text.replace("[instruments.synthesis]", extra_instruments + "\n[instruments.synthesis]", 1)
    return text


def run_cli(*args: str, env: dict | None = None, timeout: float = 300, cwd=None) -> subprocess.CompletedProcess:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([CLI, *map(str, args)], capture_output=True, text=True, env=full_env, timeout=timeout, cwd=cwd)


def assert_one_line_error(result, *words: str) -> str:
    """Exit 2, exactly one line on stderr containing every word, no traceback."""
    err = result.stderr.strip() if hasattr(result, "stderr") else result
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    for word in words:
        assert word in err, err
    return err


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0

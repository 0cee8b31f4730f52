"""What the dashboard's buttons do: run ``nanoloop approve`` in a subprocess, and say whether Prefect is there.

The dashboard never imports Prefect or ``flows``: approving is the command
line's job (it resumes the paused flow run through the Prefect API when a server
is reachable, and otherwise records the approval in the ledger). The dashboard
only shows the command's one-line answer, and says plainly when no Prefect
server is reachable.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

APPROVE_TIMEOUT_S = 180.0


@dataclass(frozen=True)
class CommandResult:
    """The outcome of one CLI call: ok (exit 0), the exit code and the line to show."""

    ok: bool
    returncode: int
    message: str


def nanoloop_command() -> list[str]:
    """How to run the command line from here: this interpreter running ``flows.cli`` as a script."""
    return [sys.executable, "-m", "nanoloop.flows.cli"]


def approve_arguments(store: str, reject: list[str] | None = None, reason: str = "", edits: dict[str, dict] | None = None,
                      by: str = "") -> list[str]:
    """The arguments of ``nanoloop approve``: ``approve STORE [--reject ID ...] [--reason TEXT] [--edit ID:VARIABLE=VALUE ...] [--by WHO]``."""
    args = ["approve", store]
    if reject:
        args += ["--reject", *reject]
    if reason.strip():
        args += ["--reason", reason.strip()]
    for fid, changes in (edits or {}).items():
        for variable, value in changes.items():
            args += ["--edit", f"{fid}:{variable}={value}"]
    if by.strip():
        args += ["--by", by.strip()]
    return args


def run_cli(args: list[str], command: list[str] | None = None, timeout_s: float = APPROVE_TIMEOUT_S) -> CommandResult:
    """Run the command line with ``args``; its one-line answer (stdout when it succeeded, stderr otherwise)."""
    command = command or nanoloop_command()
    try:
        done = subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout_s, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return CommandResult(False, -1, f"`nanoloop {args[0]}` gave no answer within {timeout_s:.0f} s; the ledger shows whether it went through")
    except OSError as err:
        return CommandResult(False, -1, f"could not run `nanoloop {args[0]}`: {err}")
    out, err = done.stdout.strip(), done.stderr.strip()
    if done.returncode == 0:
        return CommandResult(True, 0, _last_line(out) or f"`nanoloop {args[0]}` finished")
    return CommandResult(False, done.returncode, _last_line(err) or _last_line(out) or f"`nanoloop {args[0]}` failed with exit code {done.returncode}")


def approve(store: str, reject: list[str] | None = None, reason: str = "", command: list[str] | None = None,
            edits: dict[str, dict] | None = None, by: str = "") -> CommandResult:
    """Approve the batch awaiting approval (rejecting ``reject`` with ``reason``, applying ``edits``) through ``nanoloop approve``; ``by``: who."""
    return run_cli(approve_arguments(store, reject, reason, edits, by), command)


def _last_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


# -- Prefect, seen from outside ------------------------------------------------------------------
def prefect_api_url() -> str | None:
    """PREFECT_API_URL from the environment, else from the active profile in PREFECT_HOME (``~/.prefect``)."""
    url = os.environ.get("PREFECT_API_URL", "").strip()
    if url:
        return url
    home = Path(os.environ.get("PREFECT_HOME", "~/.prefect")).expanduser()
    profiles = os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml"
    try:
        document = tomllib.loads(Path(profiles).read_text())
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or document.get("active", "ephemeral")
    url = str(document.get("profiles", {}).get(active, {}).get("PREFECT_API_URL", "")).strip()
    return url or None


def prefect_server(timeout_s: float = 1.5) -> tuple[bool, str]:
    """Whether a Prefect server answers at PREFECT_API_URL, and a sentence saying so."""
    url = prefect_api_url()
    if not url:
        return False, ("No Prefect server is configured (PREFECT_API_URL is not set): an approval is recorded in the ledger, "
                       "and a paused round flow is not resumed; the next `nanoloop run` picks the approved batch up.")
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/health", timeout=timeout_s) as response:
            if response.status == 200:
                return True, f"Prefect server reachable at {url}: approving resumes the paused round flow."
    except (urllib.error.URLError, OSError, ValueError):
        pass
    return False, (f"No Prefect server is reachable at {url}: an approval is recorded in the ledger, and a paused round flow "
                   "is not resumed; the next `nanoloop run` picks the approved batch up.")

"""``nanoloop server``: a local Prefect server on 127.0.0.1 (analytics off), for approval by a person and the Prefect UI."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from nanoloop.flows.cli_args import port_number

DEFAULT_PORT = 4200


def register(subparsers) -> None:
    """Add the ``server`` command."""
    p = subparsers.add_parser("server", help="start a local Prefect server on 127.0.0.1 (analytics off)")
    p.add_argument("--port", type=port_number, default=DEFAULT_PORT, help=f"port (default {DEFAULT_PORT})")
    p.add_argument("--home", default="~/.nanoloop/prefect", help="where the server keeps its data (default ~/.nanoloop/prefect)")
    p.set_defaults(handler=cmd_server)


def cmd_server(args) -> int:
    home = Path(args.home).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "DO_NOT_TRACK": "1"}
    env.update(server_ui_settings(args.port, os.environ))
    print(f"Prefect server on 127.0.0.1:{args.port}, data in {home}. In other shells:\n  export PREFECT_API_URL=http://127.0.0.1:{args.port}/api", flush=True)
    prefect = Path(sys.executable).with_name("prefect")
    from nanoloop.flows.lifecycle import start_child, stop_children

    child = start_child([str(prefect), "server", "start", "--host", "127.0.0.1", "--port", str(args.port)], env=env)
    try:  # SIGTERM: the watcher started in main() stops the child; Ctrl-C: here
        return child.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        stop_children()


def server_ui_settings(port: int, environ) -> dict[str, str]:
    """Settings that make the Prefect UI served on ``port`` call the API on that same port.

    Without them the UI calls the default port 4200 (or a PREFECT_API_URL left in
    the shell). A PREFECT_UI_API_URL the user set (e.g. behind a proxy) is kept.
    """
    api = f"http://127.0.0.1:{port}/api"
    settings = {"PREFECT_SERVER_API_PORT": str(port), "PREFECT_API_URL": api}
    if not (environ.get("PREFECT_UI_API_URL") or environ.get("PREFECT_SERVER_UI_API_URL")):
        settings["PREFECT_UI_API_URL"] = api
    return settings

"""Who may change a campaign through the dashboard: an approval token, checked on every request.

The token is set by the environment variable ``NANOLOOP_DASHBOARD_TOKEN`` or
by a file (``--token-file``, or ``NANOLOOP_DASHBOARD_TOKEN_FILE``) with one
``label:secret`` per line (a person per line; a bare ``secret`` gets the
label ``token``). It is required when the dashboard binds to anything but
loopback, and optional on 127.0.0.1. A browser asks for it as HTTP basic
authentication (any user name, the secret as password); every request
without it, Dash's callback endpoint included, gets 401 and changes nothing.
The label of the matching secret is who approved, recorded on the approval
events; without a token it is the OS user running the dashboard.
"""

from __future__ import annotations

import getpass
import hmac
import os
from pathlib import Path

from nanoloop.loop.errors import InputError

TOKEN_ENV = "NANOLOOP_DASHBOARD_TOKEN"
TOKEN_FILE_ENV = "NANOLOOP_DASHBOARD_TOKEN_FILE"
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def _parse(lines: list[str], source: str) -> dict[str, str]:
    tokens = {}
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        label, sep, secret = line.rpartition(":")
        label, secret = (label.strip() or "token") if sep else "token", secret.strip()
        if len(secret) < 8:
            raise InputError(f"{source}: line {number}: the secret must have at least 8 characters")
        tokens[secret] = label
    return tokens


def load_tokens(token_file: str | None = None) -> dict[str, str]:
    """Secrets and their labels from the token file or the environment ({} when none is set)."""
    path = token_file or os.environ.get(TOKEN_FILE_ENV)
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as err:
            raise InputError(f"token file {path}: cannot be read ({getattr(err, 'strerror', None) or err})") from None
        tokens = _parse(text.splitlines(), f"token file {path}")
        if not tokens:
            raise InputError(f"token file {path}: holds no token (one label:secret per line)")
        return tokens
    value = os.environ.get(TOKEN_ENV, "")
    return _parse([value], TOKEN_ENV) if value.strip() else {}


def require_token_off_loopback(host: str, tokens: dict[str, str]) -> None:
    if host not in LOOPBACK and not tokens:
        raise InputError(f"the dashboard binds to {host}, beyond this machine, and can approve batches: set an approval token "
                         f"({TOKEN_ENV}=label:secret, or --token-file) or bind to 127.0.0.1")


def os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}"


def protect(server, tokens: dict[str, str]) -> None:
    """Make the Flask ``server`` answer 401 to any request without a valid token; note who asked in ``flask.g``."""
    import flask

    @server.before_request
    def _check():
        if not tokens:
            flask.g.nanoloop_user = os_user()
            return None
        auth = flask.request.authorization
        given = (auth.password if auth is not None and auth.password else "") or flask.request.headers.get("X-Nanoloop-Token", "")
        for secret, label in tokens.items():
            if given and hmac.compare_digest(given.encode(), secret.encode()):
                flask.g.nanoloop_user = label
                return None
        return flask.Response("nanoloop dashboard: approval token required", 401, {"WWW-Authenticate": 'Basic realm="nanoloop"'})


def current_user() -> str:
    """Who made the request being served (the token's label, or the OS user without tokens)."""
    import flask

    return getattr(flask.g, "nanoloop_user", "") or os_user()

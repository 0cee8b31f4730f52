"""What every ``nanoloop`` command writes the same way: STORE, a config, counts, seconds, units, approval.

One vocabulary:

- STORE, the campaign's ledger (a folder or a pyarrow filesystem URI), is a
  positional argument: the first after the command, or after CONFIG where the
  command starts from a config (``run CONFIG [STORE]``, ``schedule CONFIG [STORE]``).
- A time or a size carries its unit in the option's name: ``--approval-timeout-s``,
  ``--poll-s``, ``--times-hours``, ``--batch-size``, ``--pool-size``.
- Files of release curves: ``--time-unit {auto,min,h,d}`` and ``--release-unit {auto,pct,fraction}``.

The spellings these replace (``--store``, ``--approval-timeout``, ``--poll``,
``--release-scale``, ``serve``, ...) keep working for one release; each prints
one note on stderr naming the new spelling.

This module imports only the standard library at import time, so ``nanoloop --help``
stays fast; what a command needs it imports inside its handler.
"""

from __future__ import annotations

import argparse
import sys

STORE_HELP = "the campaign's ledger: a folder or a pyarrow filesystem URI"
TIME_UNITS = ("auto", "min", "h", "d")
RELEASE_UNITS = ("auto", "pct", "fraction")
#: old value -> new value, accepted for one release
OLD_TIME_UNITS = {"days": "d"}
OLD_RELEASE_UNITS = {"percent": "pct"}


def note_old_spelling(old: str, new: str) -> None:
    """The one-line note an old spelling prints (on stderr, so that --json output stays clean)."""
    print(f"nanoloop: note: {old} is now {new}; the old spelling works until the next release", file=sys.stderr)


class Parser(argparse.ArgumentParser):
    """argparse's parser, which also finds an optional STORE given after options.

    Python 3.11's argparse matches ``[STORE]`` as empty when an option follows
    CONFIG (``run CONFIG --rounds 2 STORE``) and then calls STORE unrecognized.
    """

    def parse_known_args(self, args=None, namespace=None):
        namespace, extras = super().parse_known_args(args, namespace)
        for action in self._actions:
            if (not action.option_strings and action.nargs == "?" and action.type is None and action.choices is None
                    and extras and not extras[0].startswith("-") and getattr(namespace, action.dest, None) is None):
                setattr(namespace, action.dest, extras.pop(0))
        return namespace, extras


class _OldSpelling(argparse.Action):
    """An option renamed in this release: stores into the new option's destination after a note."""

    def __init__(self, option_strings, dest, new: str, once: bool = False, **kwargs):
        self.new, self.once = new, once
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        if self.once and getattr(namespace, self.dest, None) is not None:
            parser.error(f"given twice: {getattr(namespace, self.dest)!r} and {option_string} {values!r}")
        note_old_spelling(option_string, self.new)
        setattr(namespace, self.dest, values)


def add_old_spelling(parser, old: str, new_action: argparse.Action, type=None) -> None:
    """Keep option ``old`` working for one release, hidden from --help, as ``new_action`` (same value and checks;
    ``type``: how the old option reads its value, when that differs)."""
    parser.add_argument(old, dest=new_action.dest, action=_OldSpelling, new=new_action.option_strings[0],
                        type=type or new_action.type, nargs=new_action.nargs, choices=new_action.choices, metavar=new_action.metavar,
                        default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def old_command(old: str, new: str, handler):
    """The handler of a command renamed to ``new``: a note, then the new command's handler."""
    def run_old_name(args) -> int:
        note_old_spelling(f"`nanoloop {old}`", f"`nanoloop {new}`")
        return handler(args)

    return run_old_name


# -- STORE and CONFIG ------------------------------------------------------------------------------
def add_store(parser, help: str = STORE_HELP) -> None:
    """STORE, required, positional."""
    parser.add_argument("store", metavar="STORE", help=help)


def add_optional_store(parser, default_text: str, example: str, help: str = STORE_HELP) -> None:
    """[STORE], positional; ``args.store`` is None when it is not given (the handler applies ``default_text``).

    The old ``--store STORE`` works for one release; its note shows ``example`` (e.g. ``nanoloop run CONFIG STORE``).
    """
    parser.add_argument("store", metavar="STORE", nargs="?", default=argparse.SUPPRESS, help=f"{help} (default: {default_text})")
    parser.add_argument("--store", dest="store", action=_OldSpelling, new=f"a positional STORE (`{example}`)", once=True,
                        default=None, help=argparse.SUPPRESS)


def load_campaign_config(path: str):
    """Load a campaign config and check its instruments (trusted, importable, protocol on the class): nothing is built or stored."""
    from nanoloop.adapters.registry import check_instruments
    from nanoloop.loop.config import load_config
    from nanoloop.loop.errors import InputError

    config = load_config(path)
    try:
        check_instruments(config)
    except InputError as err:
        raise InputError(f"{path}: {err}") from None
    return config


# -- numbers ---------------------------------------------------------------------------------------
def positive_int(text: str) -> int:
    """A count of at least 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """A count of 0 or more."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def port_number(text: str) -> int:
    """A TCP port, 1 to 65535."""
    value = int(text)
    if not 1 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 1 to 65535, got {value}")
    return value


def seconds_between(low_s: float, high_s: float):
    """An argparse type: a number of seconds from ``low_s`` to ``high_s``."""
    def seconds(text: str) -> float:
        value = float(text)
        if not low_s <= value <= high_s:
            raise argparse.ArgumentTypeError(f"must be from {low_s:g} to {high_s:g} seconds, got {value:g}")
        return value

    return seconds


# -- units of a file of release curves -----------------------------------------------------------
def _unit_value(option: str, old_values: dict[str, str], say: bool = True):
    def unit(text: str) -> str:
        if text in old_values:
            if say:
                note_old_spelling(f"{option} {text}", f"{option} {old_values[text]}")
            return old_values[text]
        return text

    return unit


def add_time_unit(parser, help: str) -> None:
    """``--time-unit {auto,min,h,d}`` (``days`` still read as ``d``)."""
    parser.add_argument("--time-unit", type=_unit_value("--time-unit", OLD_TIME_UNITS), choices=TIME_UNITS, default="auto", help=help)


def add_release_unit(parser, help: str, old_option: str | None = None) -> None:
    """``--release-unit {auto,pct,fraction}`` (``percent`` still read as ``pct``; ``old_option`` kept as a hidden alias)."""
    action = parser.add_argument("--release-unit", type=_unit_value("--release-unit", OLD_RELEASE_UNITS), choices=RELEASE_UNITS,
                                 default="auto", help=help)
    if old_option:  # its old values too, without a second note
        add_old_spelling(parser, old_option, action, type=_unit_value(old_option, OLD_RELEASE_UNITS, say=False))


# -- approval ----------------------------------------------------------------------------------------
def add_approval_options(parser) -> None:
    """``--auto-approve``, ``--approval-timeout-s S`` and ``--amend``, as ``run`` and ``schedule`` take them."""
    parser.add_argument("--auto-approve", action="store_true", help="skip the pause for a person's approval")
    timeout = parser.add_argument("--approval-timeout-s", type=positive_int, default=3600, metavar="S",
                                  help="seconds to wait for a person's approval (default 3600)")
    add_old_spelling(parser, "--approval-timeout", timeout)
    parser.add_argument("--amend", action="store_true", help="accept a changed design space, target or objective for an existing "
                        "campaign (the change is recorded as an event; the old config is kept)")

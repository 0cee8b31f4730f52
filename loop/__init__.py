"""nanoloop's science: design space, kinetics, surrogate, objectives, acquisition, the campaign ledger."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nanoloop")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

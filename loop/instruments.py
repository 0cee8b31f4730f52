"""Deprecated since 0.2.0, removed in 0.3.0: the instrument port's old path. Import from :mod:`nanoloop.instruments`.

Every name the old module had still resolves here, with a DeprecationWarning
that names the new path.
"""

from __future__ import annotations

import warnings

from nanoloop.loop.lab import instruments as port


def __getattr__(name: str):
    value = getattr(port, name)  # AttributeError, as before, for a name the port never had
    warnings.warn(f"nanoloop.loop.instruments is deprecated and goes in nanoloop 0.3.0: import {name} from nanoloop.instruments",
                  DeprecationWarning, stacklevel=2)
    return value

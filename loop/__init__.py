"""nanoloop's core: the science and the campaign, in subpackages that are layers.

Lowest first; a module imports its own subpackage or lower layers only, never a
peer of its rank (``tests/test_architecture.py`` enforces it, imports inside
functions included):

0. :mod:`~nanoloop.loop.errors` and :mod:`~nanoloop.loop.faults`: the one-line user error, named crash points;
1. :mod:`~nanoloop.loop.io`: reading lab sheets, the front door for files;
2. :mod:`~nanoloop.loop.kinetics` (release laws, fitting, f1/f2) and :mod:`~nanoloop.loop.lab`
   (the instrument port instruments implement);
3. :mod:`~nanoloop.loop.models`: release models behind one protocol;
4. :mod:`~nanoloop.loop.design`: choosing formulations from plain data;
5. :mod:`~nanoloop.loop.explain`: which variables drive release;
6. :mod:`~nanoloop.loop.config`: the campaign config, composed of its sections;
7. :mod:`~nanoloop.loop.store`: the ledger and everything that reads or writes it;
8. :mod:`~nanoloop.loop.campaign`: the Campaign, whose steps a round is made of.

Nothing here imports Prefect, the adapters, the flows or the dashboard.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nanoloop")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

"""The ``[prior]`` section's earlier measurements, read from their stores and files (read only).

Reading is here; aligning them to this campaign's variables is
:func:`nanoloop.loop.design.prior.aligned_prior`.
"""

from __future__ import annotations

import pandas as pd

from nanoloop.loop.design.prior import PriorData, aligned_prior
from nanoloop.loop.design.space import DesignSpace, recipes_table
from nanoloop.loop.errors import InputError
from nanoloop.loop.store.experiments import read_experiments, read_mapping
from nanoloop.loop.store.ledger import Ledger
from nanoloop.loop.store.measurements import mean_curves


def load_prior(prior_config, space: DesignSpace) -> PriorData | None:
    """The ``[prior]`` section's stores and files as one :class:`PriorData`; None when the section names nothing.

    Raises:
        InputError: a store or file that cannot be read, or a variable of this campaign a prior lacks without a fill value.
    """
    sources = [_from_store(location) for location in prior_config.stores]
    sources += [_from_file(location, space, prior_config) for location in prior_config.files]
    if not sources:
        return None
    return aligned_prior([(name, recipes, curves, mean_curves(curves)) for name, recipes, curves in sources], space, prior_config.fill)


def _from_store(location: str) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """(source, recipes indexed by formulation id, curves) of an earlier campaign's ledger (read only)."""
    try:
        ledger = Ledger(location, create=False, tolerant=True)
    except InputError as err:
        raise InputError(f"prior {err}") from None
    if not ledger.exists():
        raise InputError(f"prior store {location}: no campaign ledger there")
    forms = ledger.read("formulations").drop_duplicates("formulation_id").set_index("formulation_id")
    curves = ledger.read("curves")
    forms = forms[forms.index.isin(curves["formulation_id"].unique())]
    recipes = recipes_table(forms)
    return location, recipes, curves


def _from_file(location: str, space: DesignSpace, prior_config) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """(source, recipes, curves) of a spreadsheet, read as ``nanoloop import`` reads it (a bad row stops, as there)."""
    mapping = read_mapping(prior_config.map_file) if prior_config.map_file else {}
    mapping.update(prior_config.map)
    missing = {name: value for name, value in prior_config.fill.items() if name in space.names}
    found = read_experiments(location, space, mapping, missing)
    if found.bad_rows:
        more = f" (and {len(found.bad_rows) - 1} more)" if len(found.bad_rows) > 1 else ""
        raise InputError(f"prior file: {found.bad_rows[0]}{more}; a prior file must read without bad rows")
    curves = found.curves.rename(columns={"key": "formulation_id"})
    return location, found.recipes, curves

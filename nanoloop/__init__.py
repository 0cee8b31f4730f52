"""nanoloop: closed-loop active learning for drug-releasing nanoparticles.

The Python API, for a notebook or a script (time in hours, release in %)::

    import nanoloop

    campaign = nanoloop.open_campaign("nanoloop-demo")        # a campaign's ledger
    table = nanoloop.formulations("nanoloop-demo")              # one tidy row per formulation (no JSON to parse)
    readings = nanoloop.curves("nanoloop-demo")                 # every release reading, long form
    curves = nanoloop.read_table("nanoloop-demo", "curves")     # any ledger table as a DataFrame
    fits = nanoloop.fit_kinetics([1, 4, 24, 72], [8, 20, 45, 70])   # release laws ranked by AICc
    nanoloop.f2([10, 40, 80], [12, 38, 77])                      # FDA similarity factor
    model = nanoloop.ReleaseEnsemble().fit(X, y)                 # the torch surrogate (scikit-learn contract)
    designs = nanoloop.design(campaign, n=3)                     # inverse design for the campaign's target

The subpackages are the repository's folders: :mod:`nanoloop.loop` (the
science and the campaign), :mod:`nanoloop.adapters` (instruments),
:mod:`nanoloop.flows` (Prefect flows and the CLI) and
:mod:`nanoloop.dashboard`. Names load on first use, so ``import nanoloop``
stays fast; ``dir(nanoloop)`` lists them all (tab completion in a notebook).
"""

import importlib as _importlib

from nanoloop.loop import __version__

#: public name -> "module:attribute" it is loaded from on first use
_EXPORTS = {
    "Campaign": "nanoloop.loop.campaign.campaign:Campaign",
    "Ledger": "nanoloop.loop.store.ledger:Ledger",
    "CampaignConfig": "nanoloop.loop.config:CampaignConfig",
    "load_config": "nanoloop.loop.config:load_config",
    "default_config": "nanoloop.loop.config:default_config",
    "InputError": "nanoloop.loop.errors:InputError",
    "ReleaseEnsemble": "nanoloop.loop.models.ensemble:ReleaseEnsemble",
    "curve_rows": "nanoloop.loop.models.base:curve_rows",
    "fit_kinetics": "nanoloop.loop.kinetics:fit_laws",
    "summarize_curve": "nanoloop.loop.kinetics:summarize_curve",
    "f1": "nanoloop.loop.kinetics:f1",
    "f2": "nanoloop.loop.kinetics:f2",
    "Objective": "nanoloop.loop.design.objective:Objective",
    "inverse_design": "nanoloop.loop.design.inverse:inverse_design",
}

__all__ = ["__version__", "open_campaign", "read_table", "formulations", "curves", "design", *_EXPORTS]


def __getattr__(name: str):
    try:
        module, _, attribute = _EXPORTS[name].partition(":")
    except KeyError:
        raise AttributeError(f"module 'nanoloop' has no attribute {name!r}") from None
    value = getattr(_importlib.import_module(module), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public API, the names loaded on first use included, and the subpackage loaded with it."""
    return sorted({*__all__, "loop"})


def open_campaign(store: str, instruments: dict | None = None):
    """The campaign kept in ``store`` (a folder or a pyarrow filesystem URI).

    Args:
        store: the campaign's ledger.
        instruments: ``{"synthesis": ..., "dissolution": ...}`` for the lab steps;
            reading, training and proposing need none.
    """
    from nanoloop.loop.campaign.campaign import Campaign

    return Campaign.open(store, instruments)


def read_table(store: str, table: str):
    """One ledger table (``formulations``, ``events``, ``curves``, ``characterization``,
    ``kinetics``, ``models``, ``explanations``) as a pandas DataFrame."""
    from nanoloop.loop.store.ledger import Ledger

    return Ledger(store, create=False).read(table)


def formulations(store: str):
    """One tidy row per formulation of the campaign in ``store`` (what ``nanoloop export`` writes).

    Columns: id, round, origin, status and its reason, the recipe (one column per
    design variable), characterization, kinetic summary (best law, its parameters
    as name/value/unit columns, t50, t80, burst, MDT), predicted and measured
    objective, measured f2, model version, dissolution method.
    ``nanoloop.loop.store.records.COLUMNS`` gives each column's unit and meaning.
    """
    from nanoloop.loop.campaign.campaign import Campaign
    from nanoloop.loop.store.records import formulation_table

    campaign = Campaign.open(store)
    return formulation_table(campaign.ledger, campaign.config)


def curves(store: str):
    """Every measured release reading of the campaign in ``store``, long form: formulation_id, round,
    replicate, time_hours, time_days, release_pct, dissolution method, instrument."""
    from nanoloop.loop.store.ledger import Ledger
    from nanoloop.loop.store.records import curves_table

    return curves_table(Ledger(store, create=False))


def design(campaign, n: int = 5, target=None, *, pool_size: int = 32768, seed: int = 0):
    """Inverse design: the ``n`` formulations whose predicted release is closest to a target.

    Args:
        campaign: an opened campaign with a trained model (see :func:`open_campaign`).
        n: designs to return.
        target: a :class:`~nanoloop.loop.config.TargetProfile`; the campaign's own by default.
        pool_size: Sobol candidates searched before local refinement.
        seed: seed of the search.

    Returns:
        :class:`~nanoloop.loop.design.inverse.Design` objects, best first.
    """
    from nanoloop.loop.errors import InputError
    from dataclasses import replace

    from nanoloop.loop.design.inverse import DESIGN_SEARCH, inverse_design
    from nanoloop.loop.design.objective import Objective

    trained = campaign.models.latest()
    if trained is None:
        raise InputError(f"campaign {campaign.config.name!r} has no trained model yet: run a round that measures formulations first")
    config = campaign.config if target is None else campaign.config.model_copy(update={"target": target})
    search = replace(DESIGN_SEARCH, pool_size=pool_size, seed=seed)
    return inverse_design(trained.model, campaign.space, Objective.from_config(config), n, search)

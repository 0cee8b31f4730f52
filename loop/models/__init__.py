"""Release models: what a model promises (:mod:`~nanoloop.loop.models.base`), the deep ensemble, its heads and
training, the blend, Gaussian processes, the property model and predictive draws.

Models see arrays, never a ledger, a design space or a campaign: they import no
design, store or campaign module. Building and reading a campaign's model goes
through :mod:`~nanoloop.loop.models.build`, so torch loads only when a model is
built or read.
"""

"""Choosing formulations: the design space and target, the objective, strategies, candidates, acquisition,
recommenders, cold-start decisions, the prior's alignment, inverse design, distance to data and the calibration
on the campaign's prospective record.

Everything here works on plain data: a recommender gets a
:class:`~nanoloop.loop.design.recommenders.ProposalContext` the campaign read from
its ledger, so design never imports the store or the campaign, and another back
end (BoTorch, BayBE) is one class.
"""

"""Choosing formulations: design space, objective, strategies, candidates, acquisition, recommenders, cold start, prior, inverse design."""

"""Release kinetics: mechanistic release laws, curve fitting, and similarity factors."""

from loop.kinetics.similarity import f2

__all__ = ["f2"]

"""The simulated lab: ground-truth physics, noise, faults and a virtual clock.

>>> from adapters.simulated import SimulatedSynthesis, SimulatedDissolution
>>> synth = SimulatedSynthesis(seed=7)
>>> tester = SimulatedDissolution(seed=7, faults={"disconnect": 0.05})
"""

from nanoloop.adapters.simulated.clock import VirtualClock
from nanoloop.adapters.simulated.dissolution import DEFAULT_SAMPLING_TIMES_HOURS, SimulatedDissolution
from nanoloop.adapters.simulated.faults import Faults
from nanoloop.adapters.simulated.recipe import POLYMERS, RANGES, Recipe
from nanoloop.adapters.simulated.synthesis import SimulatedSynthesis

__all__ = [
    "DEFAULT_SAMPLING_TIMES_HOURS",
    "Faults",
    "POLYMERS",
    "RANGES",
    "Recipe",
    "SimulatedDissolution",
    "SimulatedSynthesis",
    "VirtualClock",
]

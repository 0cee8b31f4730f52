"""What every release model promises, and the z value of its 90 % intervals.

The :class:`ReleaseModel` protocol is written out with the models' seam (see the
module's later revision); :data:`Z90` is the one place the 90 % interval's
half-width in standard deviations is written.
"""

from __future__ import annotations

from statistics import NormalDist

#: half-width of a central 90 % normal interval, in standard deviations (1.6449)
Z90 = NormalDist().inv_cdf(0.95)

"""The release profile a campaign aims at: cumulative % released at times in hours."""

from __future__ import annotations

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator


class TargetProfile(BaseModel):
    """The release profile to reach: cumulative % released at times in hours (validated on construction)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    times_hours: list[float] = Field(min_length=3)
    release_pct: list[float] = Field(min_length=3)

    @model_validator(mode="after")
    def _check(self):
        t, r = np.asarray(self.times_hours), np.asarray(self.release_pct)
        if len(t) != len(r):
            raise ValueError(f"times_hours has {len(t)} values but release_pct has {len(r)}")
        if not np.all(np.isfinite(t)) or not np.all(np.isfinite(r)):
            raise ValueError("values must be finite numbers")
        if np.any(t <= 0) or np.any(np.diff(t) <= 0):
            raise ValueError(f"times_hours must be positive and strictly increasing, got {self.times_hours}")
        if np.any(r < 0) or np.any(r > 100):
            raise ValueError(f"release_pct must lie in [0, 100], got {self.release_pct}")
        if np.any(np.diff(r) < 0):
            raise ValueError(f"release_pct must not decrease in time (cumulative release), got {self.release_pct}")
        return self

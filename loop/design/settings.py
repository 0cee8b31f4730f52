"""The ``[acquisition]`` section of a campaign config: how a batch is searched for and scored.

It lives beside the code that reads it; :mod:`nanoloop.loop.config` composes it
into the campaign config.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from nanoloop.loop.design.strategies import STRATEGY_NAMES


class AcquisitionConfig(BaseModel):
    """Strategy, candidate search, the residual GPs and the cold start (validated on construction; unknown keys are refused)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: Literal[STRATEGY_NAMES] = "ei"  # the strategy table of loop/design/strategies.py
    pool_size: int = Field(4096, ge=16, le=1_000_000)
    tradeoff: float = Field(0.0, ge=0)
    beta: float = Field(2.0, ge=0)
    diversity_length: float = Field(0.15, ge=0, le=10)
    refine_starts: int = Field(16, ge=0, le=4096)  # best pool candidates refined by a local search (0: off)
    refine_steps: int = Field(12, ge=1, le=500)  # generations of the local search per start
    spread_prior: float | None = Field(None, ge=1, le=10)  # assumed understatement of the objective's spread before prospective data (default: 1 with residual_gp, 3 without)
    calibrate_spread: bool = True  # rescale the spread by the campaign's own prospective errors
    residual_gp: bool = True  # correct the ensemble's curves by a GP per target time on its residuals
    residual_draws: int = Field(4, ge=1, le=64)  # GP draws per ensemble member
    residual_gp_max: int = Field(150, ge=4, le=5000)  # most formulations the residual GPs are fitted on (best half + random rest)
    residual_gp_select_mean: bool = True  # per time, keep the ensemble as the GP's mean only if the marginal likelihood prefers it
    # optimiser restarts of every Gaussian process fit (the residual GPs, the curve GP, the prior's cross-validation):
    # 1 also starts from a random kernel, which can find better length scales; 0 optimises from the initial kernel only:
    # about half the fitting time with tens of formulations, a third at 100, at the risk of a poorer local optimum
    gp_restarts: int = Field(1, ge=0, le=20)
    # who proposes while fewer than cold_start_until formulations of this campaign are measured: "ensemble" (default),
    # "curve-gp", or "auto": each round, the one with the lower prospective error on the rounds measured so far
    # (on the simulated lab "auto" was not better early and cost best f2 later: bench/README.md)
    cold_start: Literal["auto", "ensemble", "curve-gp"] = "ensemble"
    cold_start_until: int = Field(40, ge=0, le=100_000)

"""The one compatibility shim for modAL 0.4.2.1 with current scikit-learn.

modAL's learners call ``check_X_y(..., force_all_finite=...)``; scikit-learn
1.8 renamed that argument ``ensure_all_finite`` and removed the old name, so
``teach()`` fails. Importing this module points modAL at a wrapper that
translates the argument. Import modAL through here, never directly.
"""

from __future__ import annotations

import inspect

import modAL.models.learners as _learners
from modAL.acquisition import EI, PI, UCB, max_EI
from modAL.models import BayesianOptimizer
from sklearn.utils import check_X_y as _sklearn_check_X_y

_NEEDS_SHIM = "force_all_finite" not in inspect.signature(_sklearn_check_X_y).parameters


def _check_X_y(*args, force_all_finite=True, **kwargs):
    return _sklearn_check_X_y(*args, ensure_all_finite=force_all_finite, **kwargs)


if _NEEDS_SHIM:
    _learners.check_X_y = _check_X_y

__all__ = ["BayesianOptimizer", "EI", "PI", "UCB", "max_EI"]

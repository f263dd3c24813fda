"""Priced plans (``--dry-run``): moved to ``igneous.plans``, one module per capability.

This module re-exports them so ``from igneous.task_creation import plans`` keeps working.
"""

from igneous.plans import *  # noqa: F403
from igneous.plans import __all__  # noqa: F401

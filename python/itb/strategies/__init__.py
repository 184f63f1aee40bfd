"""Compatibility path: :mod:`itb.strategies` is :mod:`itb.testing.strategies` (the same module
object). A package rather than ``strategies.py``, so that the move of the old file is a rename."""

import sys

from ..testing import strategies as _strategies

sys.modules[__name__] = _strategies

"""Shared pytest configuration: hypothesis profiles and import path.

Profiles: ``ci`` (the default: derandomized, so every run checks the same examples), ``dev``
(random, more examples) and ``noshrink`` (like ci, failures reported unshrunk). Choose one with ``HYPOTHESIS_PROFILE=dev pytest``.
"""

from __future__ import annotations

import os
import sys

from hypothesis import HealthCheck, Phase, settings

_HERE = os.path.dirname(os.path.abspath(__file__))
if _HERE not in sys.path:  # `import reference` / `import _scenarios` from any import mode
    sys.path.insert(0, _HERE)

_COMMON = dict(
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
        HealthCheck.filter_too_much,
    ],
)
settings.register_profile("ci", derandomize=True, print_blob=True, **_COMMON)
settings.register_profile("dev", max_examples=500, print_blob=True, **_COMMON)
# report the first failure without shrinking (quick triage of a broken build)
settings.register_profile(
    "noshrink", derandomize=True, phases=[Phase.explicit, Phase.reuse, Phase.generate], **_COMMON
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

# Derandomized streams that do not depend on the code base: hypothesis also draws literals it finds
# in local modules (itb's and these tests'), so every constant added anywhere shifted every
# derandomized stream and moved what the coverage guards saw. Without them a stream depends only
# on the test and its strategies. (Internal API: if it moves, the streams just shift as before.)
try:
    from hypothesis.internal.conjecture import providers as _providers

    if callable(getattr(_providers, "_get_local_constants", None)) and hasattr(
        _providers, "_local_constants"
    ):
        _providers._get_local_constants = lambda: _providers._local_constants  # never filled: empty
except ImportError:  # pragma: no cover - another hypothesis layout
    pass

"""The ``itb`` command line (console script ``itb.cli:main``; ``python -m itb``).

The room's modules: :mod:`itb.cli.app` (the parser, registrars, ``itb demo``, the error→exit-code
map), :mod:`itb.cli.common` (helpers every command module uses: ``add_command``, number and
duration arguments, rich output, progress), :mod:`itb.cli.scenario` (the scenario-file commands)
and :mod:`itb.cli.rig` (``itb rig …``, ``itb trumpet``).

Simulation only — not a medical device, not for clinical decisions.
"""

from __future__ import annotations

from .app import COMMAND_MODULES, REGISTRARS, main

__all__ = ["main", "REGISTRARS", "COMMAND_MODULES"]

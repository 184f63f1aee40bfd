"""``python -m itb`` — same as the ``itb`` console script (simulation only; not a medical device)."""

from .cli import main

raise SystemExit(main())

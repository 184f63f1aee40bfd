"""Precision-balance drivers for gravimetric rigs: Mettler Toledo MT-SICS
(:class:`SicsBalance`) and Sartorius SBI (:class:`SbiBalance`) over pyserial or any
pyserial-like stream. Readings carry the balance's stability flag and host timestamps;
overload, underload and busy replies are typed errors (``itb.errors.Balance*``).

Engineering tool for test rigs; **not a medical device**. Guide: docs: guide/metrology.md.
"""

from .base import Balance, LineLink, Reading, open_port
from .sbi import SbiBalance, parse_print_line
from .sics import SicsBalance, parse_weight_reply

__all__ = [
    "Balance",
    "LineLink",
    "Reading",
    "SbiBalance",
    "SicsBalance",
    "open_port",
    "parse_print_line",
    "parse_weight_reply",
]

"""Evidence a verification team can file: the SOUP list (itb and its dependencies' versions)
and JUnit XML of pass/fail verdicts (``itb rig accuracy --junit``).

Guide: docs: guide/metrology.md; decisions: docs: decisions/metrology.md.
"""

from __future__ import annotations

import platform
import re
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata

__all__ = ["Verdict", "junit_xml", "soup"]


@dataclass(frozen=True)
class Verdict:
    """One checked requirement: its ``name``, whether it passed and what was measured."""

    name: str
    passed: bool
    detail: str


def soup() -> list[tuple[str, str]]:
    """(name, version) of Python, itb and every installed distribution itb requires (its
    required dependencies, extras left out), itb first — software of unknown provenance, in
    the IEC 62304 sense, that the results depend on."""
    out = [("python", platform.python_version())]
    try:
        out.append(("itb-pump", metadata.version("itb-pump")))
        requires = metadata.requires("itb-pump") or []
    except metadata.PackageNotFoundError:
        return out + [("itb-pump", "not installed")]
    for req in requires:
        if "extra ==" in req:
            continue
        name = re.split(r"[ <>=!~;\[(]", req, maxsplit=1)[0]
        try:
            out.append((name, metadata.version(name)))
        except metadata.PackageNotFoundError:
            out.append((name, "not installed"))
    return out


def junit_xml(suite: str, verdicts: Sequence[Verdict]) -> str:
    """A JUnit XML document (one ``testsuite`` named ``suite``, one ``testcase`` per verdict,
    a ``failure`` for each failed one; the SOUP list as suite properties)."""
    failures = sum(1 for v in verdicts if not v.passed)
    root = ET.Element(
        "testsuites", {"name": suite, "tests": str(len(verdicts)), "failures": str(failures)}
    )
    ts = ET.SubElement(
        root,
        "testsuite",
        {"name": suite, "tests": str(len(verdicts)), "failures": str(failures), "errors": "0"},
    )
    props = ET.SubElement(ts, "properties")
    for name, version in soup():
        ET.SubElement(props, "property", {"name": f"soup.{name}", "value": version})
    for v in verdicts:
        case = ET.SubElement(ts, "testcase", {"classname": suite, "name": v.name})
        if v.passed:
            ET.SubElement(case, "system-out").text = v.detail
        else:
            ET.SubElement(case, "failure", {"message": v.detail}).text = v.detail
    return ET.tostring(root, encoding="unicode", xml_declaration=True)

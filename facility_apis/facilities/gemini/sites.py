"""Gemini's two sites: which one a program belongs to, which one an instrument stands at, and
the ToO servers of each.

A Gemini program id names its site in its prefix: ``GN-2026B-Q-101`` is a Gemini North program,
``GS-...`` a Gemini South one (``GN-CAL20260101``, ``GS-ENG20260101`` likewise). Each site runs its
own Observing Database with its own ToO servlet (``urltoo_readme.txt`` of Gemini's ``gsselect``;
``urltrigger.py`` there names the servers).
"""

from __future__ import annotations

import re
from enum import Enum


class Site(str, Enum):
    NORTH = "north"
    SOUTH = "south"

    @property
    def title(self) -> str:
        return f"Gemini {self.value.capitalize()}"

    @property
    def prefix(self) -> str:
        return "GN" if self is Site.NORTH else "GS"


#: The production ToO servers (``<server>/too``), used unless the deployment says otherwise.
PRODUCTION = {Site.NORTH: "https://gnodb.gemini.edu:8443", Site.SOUTH: "https://gsodb.gemini.edu:8443"}
#: Gemini's test servers: only when the deployment asks for them (``test_servers: true``).
TEST = {Site.NORTH: "https://gnodbtest.gemini.edu:8443", Site.SOUTH: "https://gsodbtest.gemini.edu:8443"}

#: A program id as the altdata form takes it (uppercase, as Gemini writes them).
PROGRAM_RULE = re.compile(r"G[NS]-[A-Z0-9]+(?:-[A-Z0-9]+)*")

_WORDS = re.compile(r"[^a-z0-9]+")


def program_site(program_id: str) -> Site:
    """The site a program id names (``GN-`` north, ``GS-`` south); ``ValueError`` otherwise."""
    if program_id.startswith("GN-"):
        return Site.NORTH
    if program_id.startswith("GS-"):
        return Site.SOUTH
    raise ValueError("a Gemini program id starts with GN- or GS-")


def instrument_site(name: str) -> Site | None:
    """The site a SkyPortal instrument's name names, or ``None`` when it names none (or both).

    North: the word ``north`` anywhere (``GeminiNorth``), a word ``gn`` (``GN GMOS``), or a last
    word ``n`` (``GMOS-N``, ``Gemini-N``); south alike with ``south``, ``gs``, ``s``. Instrument
    names alone (``GNIRS``, ``GSAOI``) are not read: they are not site markers.
    """
    lowered = name.lower()
    words = [word for word in _WORDS.split(lowered) if word]
    north = "north" in lowered or "gn" in words or (len(words) > 1 and words[-1] == "n")
    south = "south" in lowered or "gs" in words or (len(words) > 1 and words[-1] == "s")
    if north == south:
        return None
    return Site.NORTH if north else Site.SOUTH

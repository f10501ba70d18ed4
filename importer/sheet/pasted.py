"""Text as it arrives from e-mail, chat and web pages: invisible characters and addresses.

- :func:`strip` trims what a person cannot see at a cell's edges: spaces of every kind
  (non-breaking, narrow, ideographic, ...) and zero-width characters (zero-width space,
  joiners, byte-order mark, direction marks, soft hyphen). They come with text copied from
  formatted mail and web pages and would otherwise make a code or an id look wrong although
  it reads right on screen.
- :func:`invisible` finds such a character *inside* a code, where trimming cannot help.
- :func:`zype_id` reads an entitlement given as a Zype address (the admin's address bar, an API
  URL) as the one 24-hex id it holds; :func:`address_kind` says what the address is of.
"""

from __future__ import annotations

import re
import unicodedata

#: Unicode's white space (what ``str.strip()`` removes) and the usual zero-width characters.
_SPACES = "\t\n\v\f\r\x1c\x1d\x1e\x1f \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B)))
_SPACES += "\u2028\u2029\u202f\u205f\u3000"
_ZERO_WIDTH = "\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
_ZERO_WIDTH += "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff"
EDGES = _SPACES + _ZERO_WIDTH
#: The characters that look like nothing, or like a plain space, but are not one.
_INVISIBLE = frozenset(EDGES) - frozenset(" ")
_NAMES = {
    "\xa0": "non-breaking space",
    "\u202f": "narrow non-breaking space",
    "\u200b": "zero-width space",
    "\u200c": "zero-width non-joiner",
    "\u200d": "zero-width joiner",
    "\u2060": "word joiner",
    "\ufeff": "zero-width no-break space",
    "\u00ad": "soft hyphen",
    "\t": "tab",
}
_ADDRESS = re.compile(
    r"(?:https?://)?(?:[a-z0-9-]+\.)*zype\.com(?::\d+)?(?P<path>/[^?#\s]*)?(?:[?#]\S*)?",
    re.IGNORECASE | re.ASCII,
)
_ID_IN_PATH = re.compile(r"(?<![0-9a-f])[0-9a-f]{24}(?![0-9a-f])", re.IGNORECASE | re.ASCII)


def strip(text: str) -> str:
    """*text* without white space or zero-width characters at either end."""
    return text.strip(EDGES)


def invisible(text: str) -> tuple[int, str] | None:
    """(position, name) of the first invisible character in *text*, or None.

    Tabs, line breaks and spaces other than the plain one count: on screen they look like a
    space or nothing at all.
    """
    for position, char in enumerate(text):
        if char in _INVISIBLE:
            name = _NAMES.get(char) or unicodedata.name(char, "control character").lower()
            return position, f"{name}, U+{ord(char):04X}"
    return None


def zype_id(text: str) -> str | None:
    """The id in a Zype address holding exactly one 24-hex id (``https://admin.zype.com/videos/
    5f1a.../edit``), lower-case; None for any other text, including an address with none or two.

    Only the path is searched: the query string may hold an API key, which is 64 characters
    but must never be mistaken for an id, nor shown.
    """
    found = _ADDRESS.fullmatch(text)
    if found is None or not found.group("path"):
        return None
    ids = {match.lower() for match in _ID_IN_PATH.findall(found.group("path"))}
    return ids.pop() if len(ids) == 1 else None


#: The collections of Zype's admin and API addresses, by the entitlement kind they hold.
_COLLECTIONS = {
    "videos": "video",
    "playlists": "playlist",
    "plans": "plan",
    "subscription_plans": "plan",
    "pass_plans": "pass_plan",
}
_COLLECTION = re.compile(r"/([a-z_]+)/[0-9a-f]{24}(?![0-9a-f])", re.IGNORECASE | re.ASCII)


def address_kind(text: str) -> str | None:
    """The entitlement kind a Zype address names before its id (``/playlists/<id>`` is a
    playlist), or None when it names none this importer knows."""
    found = _COLLECTION.search(text.split("?")[0])
    return _COLLECTIONS.get(found.group(1).lower()) if found else None


def looks_like_address(text: str) -> bool:
    """Whether *text* is a web address of any kind (for the message when no id is read)."""
    lowered = text[:8].lower()
    return lowered.startswith(("http://", "https://", "www."))

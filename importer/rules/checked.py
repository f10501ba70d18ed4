"""A sheet read and checked in one call: what every command that reads a sheet starts with.

``run``, ``validate``, ``undo`` and ``audit`` all begin by loading the sheet
(:mod:`importer.sheet`) and validating it (:mod:`importer.rules.validate`); this is that one
step, with the loader's warnings logged once.
"""

from __future__ import annotations

import gc
import logging
from datetime import date
from pathlib import Path

from importer.config import InputConfig
from importer.rules.validate import Checked, validate, validate_codes
from importer.sheet.load import CODE_ONLY, load

log = logging.getLogger("importer")


def load_checked(path: Path, config: InputConfig, today: date) -> Checked:
    """Load and validate the sheet, logging the loader's warnings."""
    sheet = load(path, config)
    for warning in sheet.warnings:
        log.warning("%s", warning)
    checked = validate(sheet, config, today)
    freeze_heap()
    return checked


def load_codes(path: Path, config: InputConfig) -> Checked:
    """Load a list of codes (its code column only) and check the codes, logging the warnings."""
    sheet = load(path, config, columns=CODE_ONLY)
    for warning in sheet.warnings:
        log.warning("%s", warning)
    checked = validate_codes(sheet, config)
    freeze_heap()
    return checked


def freeze_heap() -> None:
    """Exempt everything loaded so far from the cyclic garbage collector.

    The records, the journal's entries and the libraries' own objects live for the whole run,
    yet collections of the older generations walk them again and again: a million records cost
    0.1-0.2 s a walk, and even with 3,000 rows, pandas and aiohttp make a 45 ms pause mid-run,
    during which granted requests pile up and then reach the API together, past the limiter's
    headroom (one 429 at 100/s was measured). Frozen, they are never walked; records and
    entries hold no cycles, so nothing collectable is kept.
    """
    gc.freeze()

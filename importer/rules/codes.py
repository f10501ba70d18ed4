"""Codes for the rows that have none: random, readable, unique, and stable across reruns.

A code is ``codes.prefix`` followed by ``codes.length`` characters of ``codes.alphabet`` (by
default no 0/O, 1/I/L, so a printed card survives being typed in by hand), drawn with
:mod:`secrets`. Codes are compared case-insensitively, as the validator compares the file's.

Stability is the caller's part: :func:`assign_codes` reuses the code the journal already holds
for a record's key and returns the new ones, which the caller stores before anything is sent.
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Callable, Container, Mapping

from importer.config import CODE_CHARS, CodesConfig
from importer.errors import ConfigError
from importer.models import Record

#: Enough draws that a collision streak this long means the code space is used up, not bad luck.
MAX_TRIES = 1000

RandBelow = Callable[[int], int]


def generate_code(
    config: CodesConfig, taken: Container[str], randbelow: RandBelow = secrets.randbelow
) -> str:
    """``prefix`` + ``length`` characters of ``alphabet``, whose upper case is not in *taken*.

    *taken* holds upper-cased codes. *randbelow* is :func:`secrets.randbelow` except in tests.
    Raises :class:`ConfigError` when :data:`MAX_TRIES` draws in a row are all taken.
    """
    alphabet, length = config.alphabet, config.length
    base = len(alphabet)
    space = base**length
    for _ in range(MAX_TRIES):
        # One draw over the whole code space, spelled out in base len(alphabet): exactly
        # uniform, and a single call into the OS's random source instead of one per character.
        number = randbelow(space)
        chars = []
        for _ in range(length):
            number, digit = divmod(number, base)
            chars.append(alphabet[digit])
        code = config.prefix + "".join(reversed(chars))
        if code.upper() not in taken:
            return code
    raise ConfigError(
        f"codes: no free code found in {MAX_TRIES} tries; raise 'codes.length'"
        f" (now {length}) or widen 'codes.alphabet'"
    )


def assign_codes(
    records: list[Record],
    known: Mapping[str, str],
    config: CodesConfig,
    taken: set[str],
    randbelow: RandBelow = secrets.randbelow,
) -> tuple[list[Record], dict[str, str]]:
    """Fill in the code of every generated record that has none.

    A record whose key is in *known* (codes the journal stored on an earlier run) gets that code
    again; any other gets a fresh one not in *taken* (upper-cased codes: the file's and the
    journal's). Each code handed out is added to *taken*. Returns the records, in order, with
    codes filled in, and ``{key: code}`` for the newly generated ones only: the caller stores
    those in the journal before sending, so a rerun never generates a second code for a row.
    """
    check_config(config)
    fresh: dict[str, str] = {}
    out: list[Record] = []
    for record in records:
        if record.generated and not record.code:
            code = known.get(record.key)
            if code is None:
                code = generate_code(config, taken, randbelow)
                fresh[record.key] = code
            taken.add(code.upper())
            record = dataclasses.replace(record, code=code)
        out.append(record)
    return out, fresh


def check_config(config: CodesConfig) -> None:
    """Refuse a prefix or alphabet that would make codes the validator itself rejects."""
    for key, value in (("codes.prefix", config.prefix), ("codes.alphabet", config.alphabet)):
        if not CODE_CHARS.fullmatch(value):
            raise ConfigError(f"'{key}' may only contain letters, digits, - and _, got {value!r}")
    if not config.alphabet or config.length < 1:
        raise ConfigError("'codes.alphabet' and 'codes.length' must not be empty")

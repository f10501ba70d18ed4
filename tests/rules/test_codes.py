"""Generated codes: alphabet, prefix, uniqueness, reuse of the journal's codes."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator

import pytest

from importer.config import DEFAULT_ALPHABET, CodesConfig
from importer.errors import ConfigError
from importer.models import Record
from importer.rules.codes import MAX_TRIES, assign_codes, check_config, generate_code

VID = "5f1a2b3c4d5e6f7a8b9c0d11"


def gen(key: str, row: int = 2) -> Record:
    return Record(row, key, "", "2030-01-01", "video", VID, generated=True)


def seeded(seed: int = 1) -> random.Random:
    return random.Random(seed)


def scripted(*values: int) -> Iterator[int]:
    return iter(values)


@pytest.mark.parametrize(
    ("config", "pattern"),
    [
        (CodesConfig(), rf"[{DEFAULT_ALPHABET}]{{12}}"),
        (CodesConfig(length=6, prefix="SUMMER-"), rf"SUMMER-[{DEFAULT_ALPHABET}]{{6}}"),
        (CodesConfig(length=20, alphabet="abcdefghij"), r"[a-j]{20}"),
    ],
)
def test_shape(config: CodesConfig, pattern: str) -> None:
    for _ in range(50):
        assert re.fullmatch(pattern, generate_code(config, set()))


def test_default_alphabet_has_no_look_alikes() -> None:
    assert not set("0O1IL") & set(DEFAULT_ALPHABET)


def test_uses_the_injected_source_over_the_whole_space() -> None:
    asked: list[int] = []

    def randbelow(n: int) -> int:
        asked.append(n)
        return n - 1

    config = CodesConfig(length=3, alphabet="ABCDEFGHIJ")
    assert generate_code(config, set(), randbelow) == "JJJ"
    assert asked == [1000]
    assert generate_code(config, set(), lambda n: 0) == "AAA"
    assert generate_code(config, set(), lambda n: 123) == "BCD"


def test_retries_while_taken_case_insensitively() -> None:
    config = CodesConfig(length=3, alphabet="abcdefghij")
    values = scripted(0, 1, 2)
    code = generate_code(config, {"AAA", "AAB"}, lambda n: next(values))
    assert code == "aac"


def test_gives_up_when_the_space_is_used_up() -> None:
    config = CodesConfig(length=1, alphabet="ABCDEFGHIJ")
    with pytest.raises(
        ConfigError, match=r"no free code found in 1000 tries; raise 'codes\.length'"
    ):
        generate_code(config, set("ABCDEFGHIJ"), seeded().randrange)
    assert MAX_TRIES == 1000


def test_every_character_turns_up() -> None:
    config = CodesConfig(length=12)
    seen = set("".join(generate_code(config, set()) for _ in range(300)))
    assert seen == set(DEFAULT_ALPHABET)


def test_assign_reuses_known_and_returns_only_new() -> None:
    given = Record(2, "code:X1", "X1", "2030-01-01", "video", VID)
    records = [given, gen("gen:a:0:0"), gen("gen:b:0:0", row=3), gen("gen:b:0:1", row=3)]
    taken = {"X1", "KNOWN1"}
    out, new = assign_codes(
        records, {"gen:a:0:0": "Known1"}, CodesConfig(), taken, seeded().randrange
    )
    assert out[0] is given
    assert out[1].code == "Known1"
    assert set(new) == {"gen:b:0:0", "gen:b:0:1"}
    assert [r.code for r in out[2:]] == [new["gen:b:0:0"], new["gen:b:0:1"]]
    assert [(r.row, r.key, r.generated) for r in out] == [
        (r.row, r.key, r.generated) for r in records
    ]
    assert taken == {"X1", "KNOWN1", *(c.upper() for c in new.values())}
    assert records[1].code == ""  # records are replaced, never changed in place


def test_assign_never_repeats_a_code_even_in_a_tiny_space() -> None:
    config = CodesConfig(length=2, alphabet="abcdefghij")  # 100 codes in all
    records = [gen(f"gen:x:{i}:0") for i in range(90)]
    taken = {"AA", "AB"}
    out, new = assign_codes(records, {}, config, taken, seeded(7).randrange)
    codes = [r.code.upper() for r in out]
    assert len(set(codes)) == 90
    assert not {"AA", "AB"} & set(codes)
    assert len(new) == 90


def test_same_key_gets_the_same_code_on_a_rerun() -> None:
    records = [gen("gen:a:0:0"), gen("gen:a:0:1")]
    first, new = assign_codes(records, {}, CodesConfig(), set())
    again, newer = assign_codes(records, new, CodesConfig(), set(new.values()))
    assert [r.code for r in again] == [r.code for r in first]
    assert newer == {}


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (CodesConfig(prefix="SUMMER 2030 "), "'codes.prefix' may only contain"),
        (CodesConfig(prefix="Été-"), "'codes.prefix' may only contain"),
        (CodesConfig(alphabet="ABCDEFGHIJ!"), "'codes.alphabet' may only contain"),
    ],
)
def test_config_that_would_make_invalid_codes(config: CodesConfig, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        check_config(config)
    with pytest.raises(ConfigError, match=message):
        assign_codes([gen("gen:a:0:0")], {}, config, set())

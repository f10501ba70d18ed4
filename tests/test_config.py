"""Settings: defaults, the documented default.yaml, overrides and one-line errors."""

from __future__ import annotations

import dataclasses
from datetime import date
from pathlib import Path

import pytest

from importer.config import (
    _SPELLED_OTHERWISE,
    CardsConfig,
    Settings,
    expiry_text,
    fill_url,
    load_settings,
)
from importer.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def test_default_yaml_documents_exactly_the_code_defaults() -> None:
    assert load_settings(ROOT / "config" / "default.yaml") == Settings()


def test_default_yaml_lists_every_key() -> None:
    import yaml

    data = yaml.safe_load((ROOT / "config" / "default.yaml").read_text())
    settings = Settings()
    assert set(data) == {f.name for f in dataclasses.fields(settings)}
    for section, values in data.items():
        fields = {f.name for f in dataclasses.fields(getattr(settings, section))}
        # send.auto is spelled `rate: auto`
        fields -= {key.partition(".")[2] for key in _SPELLED_OTHERWISE if key.startswith(section)}
        assert set(values) == fields, section


def test_file_overrides_defaults_and_command_line_overrides_file(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("send:\n  rate: 25\n  concurrency: 4\napi:\n  key_in: HEADER\n")
    settings = load_settings(path, **{"send.rate": 50.0, "send.concurrency": None})
    assert settings.send.rate == 50.0
    assert settings.send.concurrency == 4
    assert settings.api.key_in == "header"
    assert settings.send.attempts == Settings().send.attempts


def test_aliases_replace_one_column_and_keep_the_others(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("input:\n  aliases:\n    code: [Gutschein]\n")
    aliases = load_settings(path).input.aliases
    assert aliases["code"] == ("Gutschein",)
    assert aliases["video_id"] == Settings().input.aliases["video_id"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("send: [1, 2\n", "not valid YAML at line"),
        ("- a\n- b\n", "expected a mapping"),
        ("sned:\n  rate: 1\n", "unknown section 'sned'"),
        ("send:\n  rat: 1\n", "unknown key 'send.rat'"),
        ("send:\n  rate: fast\n", "'send.rate' must be a number"),
        ("send:\n  rate: 0\n", "'send.rate' must be greater than 0"),
        ("send:\n  concurrency: 2.5\n", "'send.concurrency' must be a whole number"),
        ("send:\n  concurrency: true\n", "'send.concurrency' must be a whole number"),
        ("input:\n  dayfirst: yes please\n", "'input.dayfirst' must be true or false"),
        ("api:\n  key_in: cookie\n", "'api.key_in' must be one of query, header"),
        ("journal:\n  synchronous: OFF\n", "'journal.synchronous' must be"),
        ("codes:\n  alphabet: AB\n", "'codes.alphabet' must be at least 10 distinct"),
        ("input:\n  aliases:\n    colour: [x]\n", "unknown column 'input.aliases.colour'"),
        ("send: 5\n", "'send' must be a mapping"),
        ("codes:\n  prefix: 'X Y'\n", "'codes.prefix' must be letters, digits, - and _ only"),
        ("api:\n  url: ftp://example.org\n", "'api.url' must be an http:// or https:// URL"),
        ("codes:\n  prefix: ABCDEFGHIJ\n  length: 60\n", "make 70-character codes"),
        ("cards:\n  url: https://watch.example.tv/redeem\n", "'cards.url' must contain {code}"),
        ("cards:\n  url: https://x.tv/r?c={code}&u={user}\n", "unknown placeholder {user}"),
        ("cards:\n  url: ftp://x.tv/{code}\n", "'cards.url' must be an http:// or https://"),
        ("cards:\n  url: 'javascript:alert({code})'\n", "must be an http:// or https:// URL"),
        ("cards:\n  url: https://x.tv/{code\n", "'cards.url' has an unbalanced {"),
        ("cards:\n  url: https://x.tv/{code:>9}\n", "'cards.url' takes {code} as it is"),
        ("cards:\n  expiry: Valid until {when}\n", "'cards.expiry' has an unknown placeholder"),
        ("cards:\n  expiry: Valid for a year\n", "'cards.expiry' must contain {date}"),
        ("cards:\n  page: A5\n", "'cards.page' must be one of A4, Letter"),
        ("cards:\n  image: gif\n", "'cards.image' must be one of png, svg"),
        ("cards:\n  colour: red\n", "unknown key 'cards.colour'"),
    ],
)
def test_bad_config_is_one_line_naming_file_and_key(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_settings(path)
    assert str(info.value).startswith(f"{path}: ")
    assert message in str(info.value)
    assert "\n" not in str(info.value)
    assert info.value.exit_code == 2


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "nope.yaml")


def test_empty_file_means_defaults(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing\n")
    assert load_settings(path) == Settings()


def test_settings_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        Settings().send.rate = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("value", "auto", "rate"),
    [("auto", True, 10.0), ("AUTO", True, 10.0), (25, False, 25.0), (2.5, False, 2.5)],
)
def test_rate_is_a_number_or_auto(value: object, auto: bool, rate: float) -> None:
    send = load_settings(**{"send.rate": value}).send
    assert (send.auto, send.rate) == (auto, rate)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"send.rate": "fast"}, "'send.rate' must be a number or auto, got 'fast'"),
        ({"send.auto": True}, "unknown key 'send.auto'"),
        ({"send.max_rate": 0}, "'send.max_rate' must be greater than 0"),
        ({"send.max_concurrency": 0}, "'send.max_concurrency' must be greater than 0"),
    ],
)
def test_auto_rate_settings_are_checked(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(**overrides)


def test_cards_settings_are_read_and_normalised(tmp_path: Path) -> None:
    path = tmp_path / "cards.yaml"
    path.write_text(
        "cards:\n  page: letter\n  image: SVG\n  url: https://watch.example.tv/r?code={code}\n"
        "  expiry: 'Expires {date:%d.%m.%Y}'\n  title: ''\n"
    )
    cards = load_settings(path).cards
    assert (cards.page, cards.image, cards.title) == ("Letter", "svg", "")
    assert fill_url(cards.url or "", "AB-12") == "https://watch.example.tv/r?code=AB-12"
    assert expiry_text(cards.expiry, date(2031, 12, 31)) == "Expires 31.12.2031"
    assert expiry_text(CardsConfig().expiry, date(2031, 1, 5)) == "Valid until 5 January 2031"

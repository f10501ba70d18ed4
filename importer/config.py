"""Settings, parsed once at the edge into frozen dataclasses.

The defaults live here, in the dataclasses; ``config/default.yaml`` documents every one of them and
a test keeps the two equal. A YAML file passed with ``--config`` overrides any subset; command-line
options override the file. A bad file, an unknown key or a value of the wrong type is a
:class:`~importer.errors.ConfigError` naming the file and the dotted key.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

import yaml

from importer.errors import ConfigError

#: Header spellings marketing uses, by canonical column. Matching also ignores case, spaces and
#: punctuation, so ``Promo-Code`` and ``promo code`` both hit ``promocode``.
DEFAULT_ALIASES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "code": ("promo code", "promo", "redemption code", "coupon", "coupon code", "voucher"),
        "expiration_date": (
            "expires",
            "expires on",
            "expiry",
            "expiry date",
            "expiration",
            "expiration date",
            "valid until",
            "end date",
        ),
        "video_id": ("video", "video id"),
        "playlist_id": ("playlist", "playlist id"),
        "plan_id": ("plan", "plan id", "subscription plan", "subscription plan id"),
        "pass_plan_id": ("pass plan", "pass plan id", "pass"),
        "entitlement_type": ("entitlement type", "type", "content type", "unlocks"),
        "entitlement_id": ("entitlement id", "content id", "target id"),
        "quantity": ("qty", "count", "number of codes", "codes"),
    }
)

#: No 0/O, 1/I/L: a printed promo card must survive being typed in by hand.
DEFAULT_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


@dataclass(frozen=True)
class InputConfig:
    """How spreadsheets are read and validated."""

    dayfirst: bool = False
    max_code_length: int = 64
    max_quantity: int = 100_000
    sheet: str | None = None
    aliases: Mapping[str, tuple[str, ...]] = field(default_factory=lambda: DEFAULT_ALIASES)


@dataclass(frozen=True)
class CodesConfig:
    """How missing codes are generated."""

    length: int = 12
    prefix: str = ""
    alphabet: str = DEFAULT_ALPHABET


@dataclass(frozen=True)
class ApiConfig:
    """Where and how requests go."""

    url: str = "https://api.zype.com"
    key_env: str = "ZYPE_API_KEY"
    key_in: str = "query"
    connect_timeout: float = 10.0
    total_timeout: float = 30.0


@dataclass(frozen=True)
class SendConfig:
    """Rate, concurrency and retry policy.

    ``auto`` (``rate: auto`` in the file, ``--rate auto``) finds the API's limit instead of
    pacing at ``rate``: never above ``max_rate``, with as many requests in flight as the pace
    needs, at most ``max_concurrency``.
    """

    rate: float = 10.0
    concurrency: int = 8
    auto: bool = False
    max_rate: float = 100.0
    max_concurrency: int = 64
    attempts: int = 6
    backoff_initial: float = 0.5
    backoff_max: float = 30.0
    max_consecutive_failures: int = 50
    drain_timeout: float = 10.0

    @property
    def workers(self) -> int:
        """Requests that may ever be in flight: with auto, the pace decides how many below it."""
        return self.max_concurrency if self.auto else self.concurrency


@dataclass(frozen=True)
class JournalConfig:
    """The SQLite journal."""

    path: str | None = None
    batch_size: int = 500
    flush_interval: float = 0.5
    synchronous: str = "FULL"


@dataclass(frozen=True)
class OutputConfig:
    """Results, summary and progress."""

    results: str | None = None
    summary: str | None = None
    log_interval: float = 10.0


@dataclass(frozen=True)
class NotifyConfig:
    """The webhook told when a run ends (for cron)."""

    url_env: str = "ZYPE_NOTIFY_URL"
    timeout: float = 5.0


#: The page sizes ``cards.page`` takes, as written in the config.
CARD_PAGES = ("A4", "Letter")
#: What ``cards.image`` takes: the picture format of each code in a ``--output FILE.zip``.
CARD_IMAGES = ("png", "svg")


@dataclass(frozen=True)
class CardsConfig:
    """Print-ready cards (``zype-import cards``)."""

    #: ``A4`` or ``Letter``.
    page: str = "A4"
    #: The heading printed on every card ("" for none).
    title: str = "Your promo code"
    #: What the QR code holds: an http(s) URL with ``{code}`` filled in; None: the bare code.
    url: str | None = None
    #: The expiry line: ``{date}`` with a strftime format after the colon.
    expiry: str = "Valid until {date:%-d %B %Y}"
    #: A PNG or JPEG printed in a corner of every card; None: no logo.
    logo: str | None = None
    #: ``png`` or ``svg``: the zip's images.
    image: str = "png"


@dataclass(frozen=True)
class Settings:
    """Every setting of a run."""

    input: InputConfig = field(default_factory=InputConfig)
    codes: CodesConfig = field(default_factory=CodesConfig)
    api: ApiConfig = field(default_factory=ApiConfig)
    send: SendConfig = field(default_factory=SendConfig)
    journal: JournalConfig = field(default_factory=JournalConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    cards: CardsConfig = field(default_factory=CardsConfig)


#: What a code (and so a prefix or an alphabet for generated ones) may be made of.
CODE_CHARS = re.compile(r"[A-Za-z0-9_-]*")
_URL = re.compile(r"https?://[^/\s?#]+(/[^\s?#]*)?", re.IGNORECASE)
#: What a shell lets an environment variable be called.
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

_CHOICES = {
    "api.key_in": ("query", "header"),
    "journal.synchronous": ("NORMAL", "FULL"),
    "cards.page": CARD_PAGES,
    "cards.image": CARD_IMAGES,
}
_POSITIVE = {
    "input.max_code_length",
    "input.max_quantity",
    "codes.length",
    "send.rate",
    "send.concurrency",
    "send.max_rate",
    "send.max_concurrency",
    "send.attempts",
    "send.max_consecutive_failures",
    "journal.batch_size",
    "api.connect_timeout",
    "api.total_timeout",
    "notify.timeout",
}


def load_settings(path: str | Path | None = None, **overrides: Any) -> Settings:
    """Read *path* (YAML) over the defaults, then apply dotted *overrides* (``send.rate=5``).

    Overrides whose value is ``None`` are skipped, so command-line options left unset do not
    replace the file's values.
    """
    settings = Settings()
    source = "defaults"
    if path is not None:
        source = str(path)
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"{source}: cannot read config file ({exc.strerror})") from None
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f" at line {mark.line + 1}" if mark is not None else ""
            raise ConfigError(f"{source}: not valid YAML{where}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: expected a mapping of sections at the top level")
        settings = _merge(settings, data, source)
    dotted = {key: value for key, value in overrides.items() if value is not None}
    if dotted:
        nested: dict[str, dict[str, Any]] = {}
        for key, value in dotted.items():
            section, _, name = key.partition(".")
            nested.setdefault(section, {})[name] = value
        settings = _merge(settings, nested, "command line")
    longest = len(settings.codes.prefix) + settings.codes.length
    if longest > settings.input.max_code_length:
        raise ConfigError(
            f"{source}: 'codes.prefix' plus 'codes.length' make {longest}-character codes, "
            f"longer than 'input.max_code_length' ({settings.input.max_code_length})"
        )
    return settings


#: Fields set through another key: ``send.auto`` is spelled ``send.rate: auto``.
_SPELLED_OTHERWISE = frozenset({"send.auto"})


def _merge(settings: Settings, data: Mapping[str, Any], source: str) -> Settings:
    sections = {f.name: f for f in dataclasses.fields(settings)}
    changes: dict[str, Any] = {}
    for section_name, values in data.items():
        if section_name not in sections:
            raise ConfigError(f"{source}: unknown section '{section_name}'")
        if values is None:
            continue
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: '{section_name}' must be a mapping of settings")
        section = getattr(settings, section_name)
        changes[section_name] = _merge_section(section, section_name, values, source)
    return dataclasses.replace(settings, **changes)


def _merge_section(section: Any, section_name: str, values: Mapping[str, Any], source: str) -> Any:
    known = {f.name for f in dataclasses.fields(section)}
    changes: dict[str, Any] = {}
    for name, value in values.items():
        key = f"{section_name}.{name}"
        if name not in known or key in _SPELLED_OTHERWISE:
            raise ConfigError(f"{source}: unknown key '{key}'")
        if key == "send.rate":
            auto = isinstance(value, str) and value.strip().lower() == "auto"
            changes["auto"] = auto
            if auto:
                continue
            if isinstance(value, str):
                raise ConfigError(f"{source}: '{key}' must be a number or auto, got {value!r}")
        changes[name] = _coerce(key, getattr(section, name), value, source)
    return dataclasses.replace(section, **changes)


def _coerce(key: str, default: Any, value: Any, source: str) -> Any:
    def bad(expected: str) -> ConfigError:
        return ConfigError(f"{source}: '{key}' must be {expected}, got {value!r}")

    if key == "input.aliases":
        return _coerce_aliases(key, value, source)
    if key in ("input.sheet", "journal.path", "output.results", "output.summary", "cards.logo"):
        if value is None or isinstance(value, str):
            return value
        raise bad("a string")
    if key == "cards.url":
        if value is None:
            return value
        if not isinstance(value, str):
            raise bad("a string")
        problem = url_template_problem(value)
        if problem:
            raise ConfigError(f"{source}: 'cards.url' {problem}, got {value!r}")
        return value
    if key == "cards.expiry":
        if not isinstance(value, str):
            raise bad("a string")
        problem = expiry_problem(value)
        if problem:
            raise ConfigError(f"{source}: 'cards.expiry' {problem}, got {value!r}")
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise bad("true or false")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad("a whole number")
        if key in _POSITIVE and value <= 0:
            raise bad("greater than 0")
        return value
    if isinstance(default, float):
        number = isinstance(value, int | float) and not isinstance(value, bool)
        if not number or not math.isfinite(value):
            raise bad("a number")
        if value < 0 or (key in _POSITIVE and value == 0):
            raise bad("greater than 0" if key in _POSITIVE else "0 or more")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise bad("a string")
        choices = _CHOICES.get(key)
        if choices is not None:
            normal = value.upper() if key == "journal.synchronous" else value.lower()
            if key.startswith("cards."):  # A4, Letter: matched in any case, kept as documented
                normal = {choice.lower(): choice for choice in choices}.get(value.lower(), value)
            if normal not in choices:
                raise bad("one of " + ", ".join(choices))
            return normal
        if key in ("codes.alphabet", "codes.prefix") and not CODE_CHARS.fullmatch(value):
            raise bad("letters, digits, - and _ only")
        if key == "codes.alphabet" and len(set(value)) < 10:
            raise bad("at least 10 distinct characters")
        if key == "api.url" and not _URL.fullmatch(value):
            raise bad("an http:// or https:// URL")
        if key == "notify.url_env" and not _ENV_NAME.fullmatch(value):
            raise bad("an environment variable name")
        return value
    raise bad("a valid value")  # pragma: no cover - every field is handled above


def _coerce_aliases(key: str, value: Any, source: str) -> Mapping[str, tuple[str, ...]]:
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: '{key}' must map column names to lists of aliases")
    merged = dict(DEFAULT_ALIASES)
    for column, names in value.items():
        if column not in DEFAULT_ALIASES:
            raise ConfigError(f"{source}: unknown column '{key}.{column}'")
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
            raise ConfigError(f"{source}: '{key}.{column}' must be a list of header names")
        merged[column] = tuple(names)
    return MappingProxyType(merged)


def is_loopback(host: str) -> bool:
    """Whether *host* names this machine (``localhost``, 127.0.0.0/8, ``::1``): the only place a
    secret may go over plain ``http://``."""
    if host.lower() in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _placeholders(template: str) -> list[tuple[str, str, str | None]]:
    """The ``{name:spec!conversion}`` fields of a :meth:`str.format` template, in order;
    ValueError for unbalanced braces."""
    return [
        (name, spec or "", conversion)
        for _, name, spec, conversion in string.Formatter().parse(template)
        if name is not None
    ]


def url_template_problem(template: str) -> str:
    """Why *template* is no ``cards.url`` ("" if it is one): it must hold ``{code}`` (and no
    other placeholder) and be an ``http://`` or ``https://`` URL once filled in."""
    try:
        fields = _placeholders(template)
    except ValueError:
        return "has an unbalanced { or } (write {{ or }} for a brace itself)"
    for name, spec, conversion in fields:
        if name != "code":
            return f"has an unknown placeholder {{{name}}} (only {{code}} is filled in)"
        if spec or conversion:
            return "takes {code} as it is, with no format after it"
    if not fields:
        return "must contain {code}, where each card's code goes"
    parts = urlsplit(fill_url(template, "CODE"))
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return "must be an http:// or https:// URL"
    if any(char.isspace() for char in template):
        return "must be a URL without spaces"
    return ""


def fill_url(template: str, code: str) -> str:
    """``cards.url`` with *code* in place of ``{code}`` (codes hold only URL-safe characters)."""
    return template.format(code=code)


def expiry_problem(template: str) -> str:
    """Why *template* is no ``cards.expiry`` ("" if it is one): it must hold ``{date}``, with an
    optional strftime format (``{date:%-d %B %Y}``), and no other placeholder."""
    try:
        fields = _placeholders(template)
    except ValueError:
        return "has an unbalanced { or } (write {{ or }} for a brace itself)"
    for name, _, conversion in fields:
        if name != "date":
            return f"has an unknown placeholder {{{name}}} (only {{date}} is filled in)"
        if conversion:
            return "takes {date} with a strftime format only, e.g. {date:%d %B %Y}"
    if not fields:
        return "must contain {date}, where each card's expiry date goes"
    try:
        expiry_text(template, date(2031, 12, 31))
    except (ValueError, TypeError) as exc:
        return f"cannot format a date ({exc})"
    return ""


def expiry_text(template: str, day: date) -> str:
    """``cards.expiry`` for *day*: ``Valid until 31 December 2031`` by default."""
    return template.format(date=day)

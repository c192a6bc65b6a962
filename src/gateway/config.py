"""Settings from `GATEWAY_*` environment variables, read once by `bootstrap`.

Bad configuration raises `ConfigError` whose message is one line naming the variable.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

PREFIX = "GATEWAY_"
_DATABASES = ("sqlite+aiosqlite", "postgresql+asyncpg")
GATEWAY_PORT = 8000  # where `gateway api` and `gateway dev` listen unless told otherwise


class ConfigError(ValueError):
    """One clear line naming the variable that is wrong."""


@dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite+aiosqlite:///gateway.db"
    broker_url: str | None = None
    bank_url: str | None = None
    bank_latency_ms: int = 50
    bank_timeout_s: float = 5.0
    bank_attempts: int = 5
    bank_pending_timeout_s: float = 30.0
    bank_webhook_secret: str | None = field(default=None, repr=False)
    bank_webhook_url: str | None = None
    webhook_tolerance_s: int = 300
    webhook_allow_internal: bool = False
    webhook_retry_schedule: tuple[float, ...] = ()
    card_key: bytes | None = field(default=None, repr=False)
    card_key_file: Path = Path("gateway.key")
    queue_prefix: str = "gateway"
    max_body_bytes: int = 65_536
    api_key_cache_s: float = 2.0
    trusted_proxies: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...] = ()
    rate_limit_per_s: float = 100.0
    rate_limit_burst: int = 200
    auth_failure_limit: int = 20
    worker_concurrency: int = 512
    metrics_port: int | None = None
    log_level: str = "INFO"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def bank_webhook_secrets(self) -> tuple[str, ...]:
        """`GATEWAY_BANK_WEBHOOK_SECRET`, comma-separated during a rotation: any one verifies
        a callback; the first is the current one (the bank simulator signs with it)."""
        raw = self.bank_webhook_secret or ""
        return tuple(secret for part in raw.split(",") if (secret := part.strip()))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        source = os.environ if env is None else env
        r = _Reader({k[len(PREFIX) :]: v for k, v in source.items() if k.startswith(PREFIX)})
        d = cls()
        return cls(
            database_url=r.url("DATABASE_URL", d.database_url, _DATABASES),
            broker_url=r.optional_url("BROKER_URL", ("amqp", "amqps")),
            bank_url=r.optional_url("BANK_URL", ("http", "https")),
            bank_latency_ms=r.integer("BANK_LATENCY_MS", d.bank_latency_ms, 0, 600_000),
            bank_timeout_s=r.number("BANK_TIMEOUT_S", d.bank_timeout_s, 0.01, 120),
            bank_attempts=r.integer("BANK_ATTEMPTS", d.bank_attempts, 1, 20),
            bank_pending_timeout_s=r.number(
                "BANK_PENDING_TIMEOUT_S", d.bank_pending_timeout_s, 0.1, 9e4
            ),
            bank_webhook_secret=r.text("BANK_WEBHOOK_SECRET"),
            bank_webhook_url=r.optional_url("BANK_WEBHOOK_URL", ("http", "https")),
            webhook_tolerance_s=r.integer("WEBHOOK_TOLERANCE_S", d.webhook_tolerance_s, 1, 86400),
            webhook_allow_internal=r.boolean("WEBHOOK_ALLOW_INTERNAL", d.webhook_allow_internal),
            webhook_retry_schedule=r.schedule("WEBHOOK_RETRY_SCHEDULE"),
            card_key=r.key("CARD_KEY"),
            card_key_file=Path(r.text("CARD_KEY_FILE") or d.card_key_file),
            queue_prefix=r.text("QUEUE_PREFIX") or d.queue_prefix,
            max_body_bytes=r.integer("MAX_BODY_BYTES", d.max_body_bytes, 1024, 16_777_216),
            api_key_cache_s=r.number("API_KEY_CACHE_S", d.api_key_cache_s, 0, 5),
            trusted_proxies=r.networks("TRUSTED_PROXIES"),
            rate_limit_per_s=r.number("RATE_LIMIT_PER_S", d.rate_limit_per_s, 0, 1e6),
            rate_limit_burst=r.integer("RATE_LIMIT_BURST", d.rate_limit_burst, 1, 10_000_000),
            auth_failure_limit=r.integer("AUTH_FAILURE_LIMIT", d.auth_failure_limit, 0, 1_000_000),
            worker_concurrency=r.integer("WORKER_CONCURRENCY", d.worker_concurrency, 1, 10_000),
            metrics_port=r.optional_integer("METRICS_PORT", 1, 65_535),
            log_level=r.choice("LOG_LEVEL", d.log_level, ("DEBUG", "INFO", "WARNING", "ERROR")),
        )  # fmt: skip


def check_bank_callbacks(settings: Settings) -> None:
    """A bank callback URL needs a secret to sign with: unsigned, every callback would be
    refused with `401`."""
    if settings.bank_webhook_url is not None and not settings.bank_webhook_secrets:
        raise ConfigError(
            f"{PREFIX}BANK_WEBHOOK_SECRET must be set when {PREFIX}BANK_WEBHOOK_URL is:"
            " the bank signs its callbacks with it"
        )


def bank_webhook_url(settings: Settings, gateway_port: int = GATEWAY_PORT) -> str | None:
    """Where the bank simulator posts its signed callbacks: `GATEWAY_BANK_WEBHOOK_URL`, by
    default the gateway's own `/webhooks/bank` on `gateway_port`; None without a bank
    secret (no callbacks: pending payments settle by the status lookup)."""
    check_bank_callbacks(settings)
    if not settings.bank_webhook_secrets:
        return None
    return settings.bank_webhook_url or f"http://127.0.0.1:{gateway_port}/webhooks/bank"


@dataclass(frozen=True, slots=True)
class _Reader:
    values: Mapping[str, str]

    def _fail(self, name: str, why: str) -> ConfigError:
        return ConfigError(f"{PREFIX}{name} {why}")

    def text(self, name: str) -> str | None:
        value = self.values.get(name, "").strip()
        return value or None

    def url(self, name: str, default: str, schemes: tuple[str, ...]) -> str:
        value = self.text(name) or default
        scheme = value.split("://", 1)[0] if "://" in value else ""
        if scheme not in schemes:
            raise self._fail(
                name, f"must be a URL starting with {' or '.join(s + '://' for s in schemes)}"
            )
        return value

    def optional_url(self, name: str, schemes: tuple[str, ...]) -> str | None:
        return self.url(name, "", schemes) if self.text(name) else None

    def integer(self, name: str, default: int, low: int, high: int) -> int:
        raw = self.text(name)
        if raw is None:
            return default
        if not raw.lstrip("-").isdigit() or not low <= int(raw) <= high:
            raise self._fail(name, f"must be a whole number from {low} to {high}, not {raw!r}")
        return int(raw)

    def optional_integer(self, name: str, low: int, high: int) -> int | None:
        return self.integer(name, low, low, high) if self.text(name) else None

    def number(self, name: str, default: float, low: float, high: float) -> float:
        raw = self.text(name)
        if raw is None:
            return default
        try:
            value = float(raw)
        except ValueError:
            value = float("nan")
        if not low <= value <= high:
            raise self._fail(name, f"must be a number from {low} to {high}, not {raw!r}")
        return value

    def boolean(self, name: str, default: bool) -> bool:
        raw = (self.text(name) or str(default)).lower()
        if raw not in {"true", "false", "1", "0", "yes", "no"}:
            raise self._fail(name, f"must be true or false, not {raw!r}")
        return raw in {"true", "1", "yes"}

    def choice(self, name: str, default: str, choices: tuple[str, ...]) -> str:
        raw = (self.text(name) or default).upper()
        if raw not in choices:
            raise self._fail(name, f"must be one of {', '.join(choices)}, not {raw!r}")
        return raw

    def schedule(self, name: str) -> tuple[float, ...]:
        raw = self.text(name)
        if raw is None:
            return ()
        try:
            delays = tuple(float(part) for part in raw.split(","))
        except ValueError:
            delays = (-1.0,)
        if not delays or any(not 0 <= d <= 7 * 86_400 for d in delays):
            raise self._fail(name, "must be comma-separated seconds, e.g. 1,5,30")
        return delays

    def key(self, name: str) -> bytes | None:
        raw = self.text(name)
        if raw is None:
            return None
        try:
            key = base64.b64decode(raw, validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != 32:
            raise self._fail(name, "must be 32 random bytes in base64 (openssl rand -base64 32)")
        return key

    def networks(self, name: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
        raw = self.text(name)
        if raw is None:
            return ()
        try:
            return tuple(ipaddress.ip_network(part.strip()) for part in raw.split(","))
        except ValueError:
            raise self._fail(
                name, "must be comma-separated IP addresses or CIDR networks"
            ) from None


def read_card_key(settings: Settings, *, create: bool) -> bytes:
    """The card-data key: `GATEWAY_CARD_KEY`, else the key file (made if `create`)."""
    if settings.card_key is not None:
        return settings.card_key
    path = settings.card_key_file
    if not path.exists():
        if not create:
            raise ConfigError(
                f"{PREFIX}CARD_KEY is not set and {PREFIX}CARD_KEY_FILE ({path}) does not exist"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(base64.b64encode(os.urandom(32)).decode() + "\n")
    return _Reader({"CARD_KEY_FILE": path.read_text().strip()}).key("CARD_KEY_FILE") or b""

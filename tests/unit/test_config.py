"""Settings from `GATEWAY_*` variables: every variable is read, the README's configuration
table lists exactly those with the defaults `Settings` has, and a bank callback URL
without a secret to sign with is refused with one line."""

from __future__ import annotations

import base64
import dataclasses
import ipaddress
import re
from pathlib import Path
from typing import Any

import pytest

from gateway.config import ConfigError, Settings, bank_webhook_url, check_bank_callbacks

README = Path(__file__).resolve().parents[2] / "README.md"
KEY = bytes(range(32))

# (variable, value in the environment, Settings field, what the field then holds)
VARIABLES: list[tuple[str, str, str, Any]] = [
    ("DATABASE_URL", "postgresql+asyncpg://u@db/gw", "database_url", "postgresql+asyncpg://u@db/gw"),
    ("BROKER_URL", "amqp://guest:guest@mq:5672/", "broker_url", "amqp://guest:guest@mq:5672/"),
    ("BANK_URL", "http://bank:8080", "bank_url", "http://bank:8080"),
    ("BANK_LATENCY_MS", "7", "bank_latency_ms", 7),
    ("BANK_TIMEOUT_S", "1.5", "bank_timeout_s", 1.5),
    ("BANK_ATTEMPTS", "3", "bank_attempts", 3),
    ("BANK_PENDING_TIMEOUT_S", "3", "bank_pending_timeout_s", 3.0),
    ("BANK_WEBHOOK_SECRET", "new, old", "bank_webhook_secret", "new, old"),
    ("BANK_WEBHOOK_URL", "http://api:8000/webhooks/bank", "bank_webhook_url",
     "http://api:8000/webhooks/bank"),
    ("WEBHOOK_TOLERANCE_S", "60", "webhook_tolerance_s", 60),
    ("WEBHOOK_ALLOW_INTERNAL", "true", "webhook_allow_internal", True),
    ("WEBHOOK_RETRY_SCHEDULE", "1,1,2", "webhook_retry_schedule", (1.0, 1.0, 2.0)),
    ("CARD_KEY", base64.b64encode(KEY).decode(), "card_key", KEY),
    ("CARD_KEY_FILE", "/run/secrets/card.key", "card_key_file", Path("/run/secrets/card.key")),
    ("QUEUE_PREFIX", "shop", "queue_prefix", "shop"),
    ("MAX_BODY_BYTES", "2048", "max_body_bytes", 2048),
    ("API_KEY_CACHE_S", "0.5", "api_key_cache_s", 0.5),
    ("TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1", "trusted_proxies",
     (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("192.0.2.1/32"))),
    ("RATE_LIMIT_PER_S", "0", "rate_limit_per_s", 0.0),
    ("RATE_LIMIT_BURST", "5", "rate_limit_burst", 5),
    ("AUTH_FAILURE_LIMIT", "0", "auth_failure_limit", 0),
    ("WORKER_CONCURRENCY", "8", "worker_concurrency", 8),
    ("METRICS_PORT", "9100", "metrics_port", 9100),
    ("LOG_LEVEL", "debug", "log_level", "DEBUG"),
]  # fmt: skip


@pytest.mark.parametrize(("name", "raw", "field", "expected"), VARIABLES)
def test_each_variable_sets_its_setting(name: str, raw: str, field: str, expected: Any) -> None:
    settings = Settings.from_env({f"GATEWAY_{name}": raw})

    assert getattr(settings, field) == expected


def test_every_setting_has_a_variable() -> None:
    assert sorted(field for _, _, field, _ in VARIABLES) == sorted(
        field.name for field in dataclasses.fields(Settings)
    )


def test_without_variables_every_setting_has_its_default() -> None:
    assert Settings.from_env({"PATH": "/bin", "BANK_URL": "ignored: no prefix"}) == Settings()


@pytest.mark.parametrize(
    ("name", "raw"),
    [
        ("BANK_PENDING_TIMEOUT_S", "0"),
        ("BANK_PENDING_TIMEOUT_S", "soon"),
        ("BANK_WEBHOOK_URL", "ftp://api/webhooks/bank"),
        ("WEBHOOK_TOLERANCE_S", "0"),
        ("WEBHOOK_RETRY_SCHEDULE", "1,,2"),
        ("WEBHOOK_RETRY_SCHEDULE", "-1"),
        ("TRUSTED_PROXIES", "10.0.0.0/8,proxy"),
        ("RATE_LIMIT_PER_S", "-1"),
        ("RATE_LIMIT_BURST", "0"),
        ("AUTH_FAILURE_LIMIT", "many"),
        ("METRICS_PORT", "0"),
        ("METRICS_PORT", "http"),
    ],
)
def test_a_bad_value_is_one_line_naming_the_variable(name: str, raw: str) -> None:
    with pytest.raises(ConfigError) as refused:
        Settings.from_env({f"GATEWAY_{name}": raw})

    assert str(refused.value).startswith(f"GATEWAY_{name} ")
    assert "\n" not in str(refused.value)


def readme_table() -> dict[str, str]:
    """The README's configuration table: variable → default column."""
    section = README.read_text().split("## Configuration", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| `GATEWAY_([A-Z_]+)` \| (.+?) \|", section, flags=re.MULTILINE)
    return dict(rows)


def test_the_readme_lists_exactly_the_variables_read() -> None:
    assert sorted(readme_table()) == sorted(name for name, _, _, _ in VARIABLES)


@pytest.mark.parametrize("field", [f.name for f in dataclasses.fields(Settings)])
def test_the_readme_shows_each_default(field: str) -> None:
    name = next(name for name, _, f, _ in VARIABLES if f == field)
    default = getattr(Settings(), field)
    shown = readme_table()[name]

    if default in (None, ()):
        assert shown.startswith("unset"), (name, shown)
    else:
        text = {True: "true", False: "false"}.get(default, str(default))
        if isinstance(default, float) and default.is_integer():
            text = str(int(default))
        assert shown.split(" ", 1)[0] == f"`{text}`", (name, shown)


def test_the_bank_posts_to_the_gateways_own_webhook_by_default() -> None:
    settings = Settings.from_env({"GATEWAY_BANK_WEBHOOK_SECRET": "shared"})

    assert bank_webhook_url(settings) == "http://127.0.0.1:8000/webhooks/bank"
    assert bank_webhook_url(settings, 8123) == "http://127.0.0.1:8123/webhooks/bank"


def test_a_configured_callback_url_wins() -> None:
    settings = Settings.from_env(
        {"GATEWAY_BANK_WEBHOOK_SECRET": "s", "GATEWAY_BANK_WEBHOOK_URL": "http://api:8000/cb"}
    )

    assert bank_webhook_url(settings, 8123) == "http://api:8000/cb"


def test_without_a_secret_the_bank_sends_no_callbacks() -> None:
    assert bank_webhook_url(Settings.from_env({})) is None
    assert bank_webhook_url(Settings.from_env({"GATEWAY_BANK_WEBHOOK_SECRET": " , "})) is None


@pytest.mark.parametrize("secret", [None, " , "])
def test_a_callback_url_without_a_secret_is_refused_with_one_line(secret: str | None) -> None:
    env = {"GATEWAY_BANK_WEBHOOK_URL": "http://api:8000/webhooks/bank"}
    if secret is not None:
        env["GATEWAY_BANK_WEBHOOK_SECRET"] = secret
    settings = Settings.from_env(env)

    with pytest.raises(ConfigError) as refused:
        check_bank_callbacks(settings)

    assert str(refused.value) == (
        "GATEWAY_BANK_WEBHOOK_SECRET must be set when GATEWAY_BANK_WEBHOOK_URL is:"
        " the bank signs its callbacks with it"
    )
    with pytest.raises(ConfigError):
        bank_webhook_url(settings)


def test_rotating_bank_secrets_are_comma_separated_the_first_signs() -> None:
    settings = Settings.from_env({"GATEWAY_BANK_WEBHOOK_SECRET": " new , old ,"})

    assert settings.bank_webhook_secrets == ("new", "old")

"""Run-time settings: environment variables win over the config file, which wins over defaults.

The config file is TOML (``TELEGESTION_CONFIG``, else ``./telegestion.toml`` when present), so an
operator can keep secrets such as the Twilio auth token out of the process environment.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class SettingsError(ValueError):
    """A setting that cannot be used; the message names the setting and the source."""


@dataclasses.dataclass(frozen=True)
class Settings:
    database_url: str = "sqlite:///telegestion.db"
    node: str = "node1"
    default_region: str = "FR"
    agi_port: int = 4573
    http_port: int = 8080
    listen_interface: str = ""
    # A query that takes longer is cancelled, so a stuck database cannot hold a call's thread.
    statement_timeout_ms: int = 5000
    db_pool_size: int = 10
    # During a database outage calls go on from a local directory copy and a durable spool
    # (ivr.resilient_store): its folder ("" = ./spool/<node>), and how long a call waits for the
    # database before it goes offline.
    spool_dir: str = ""
    db_wait_s: float = 2.0
    twilio_account_sid: str = ""
    twilio_auth_token: str = ""
    twilio_api_url: str = ""
    public_url: str = ""
    callback_delay_s: float = 5.0
    callback_retry_s: float = 60.0
    # The landline flow's waits (ivr.flow.FlowSettings), for FastAGI and the AGI script alike:
    # how long a carer may take to key a code, and the waits after the readback offers.
    flow_code_timeout_s: float = 6.0
    flow_arrival_readback_wait_s: float = 1.5
    flow_departure_readback_wait_s: float = 3.0
    flow_task_codes_timeout_s: float = 5.0
    # Operations (docs/deployment.md): how long a stopping worker lets its calls finish, and
    # the log line format (json for a log shipper, text for a person at a terminal).
    shutdown_grace_s: float = 30.0
    log_format: str = "json"
    # Coordinator and support pages: a session ends after this much inactivity, and at the
    # latest this long after login; a login is locked for a while after a few failed passwords.
    web_session_idle_min: int = 60
    web_session_max_hours: int = 12
    web_login_max_failures: int = 5
    web_login_lockout_min: int = 15
    config_file: str | None = None


_ENV_PREFIX = "TELEGESTION_"


def _coerce(name: str, raw: Any, target: type | str, source: str) -> Any:
    kind = target if isinstance(target, str) else target.__name__
    try:
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
    except (TypeError, ValueError):
        raise SettingsError(f"{source}: {name} must be a number, not {raw!r}") from None
    return str(raw)


def load_settings(
    environ: Mapping[str, str] | None = None, config_path: str | Path | None = None
) -> Settings:
    """Read the settings once, at start-up, from the config file and the environment."""
    env = os.environ if environ is None else environ
    fields = {f.name: f for f in dataclasses.fields(Settings) if f.name != "config_file"}
    values: dict[str, Any] = {}

    path = config_path or env.get("TELEGESTION_CONFIG")
    if path is None and Path("telegestion.toml").is_file():
        path = "telegestion.toml"
    if path is not None:
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise SettingsError(f"config file {path} does not exist") from None
        except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise SettingsError(f"config file {path} cannot be read: {exc}") from None
        section = data.get("telegestion", data)
        for key, raw in section.items():
            if key not in fields:
                raise SettingsError(f"config file {path}: unknown setting {key!r}")
            values[key] = _coerce(key, raw, fields[key].type, f"config file {path}")

    for name, field in fields.items():
        raw = env.get(_ENV_PREFIX + name.upper())
        if raw is not None and raw != "":
            values[name] = _coerce(name, raw, field.type, _ENV_PREFIX + name.upper())

    for name, value in values.items():
        if name.startswith("flow_") and not 0 < value <= 60:
            raise SettingsError(f"{name} must be between 0 and 60 seconds, not {value!r}")
        if name.startswith("web_") and value < 1:
            raise SettingsError(f"{name} must be at least 1, not {value!r}")
        if name == "shutdown_grace_s" and not 0 <= value <= 3600:
            raise SettingsError(f"shutdown_grace_s must be between 0 and 3600, not {value!r}")
        if name == "log_format" and value not in ("json", "text"):
            raise SettingsError(f"log_format must be json or text, not {value!r}")

    if "db_wait_s" in values and not 0 < values["db_wait_s"] <= 60:
        raise SettingsError(
            f"db_wait_s must be between 0 and 60 seconds, not {values['db_wait_s']!r}"
        )

    return Settings(**values, config_file=str(path) if path else None)


def spool_path(settings: Settings) -> Path:
    """The worker's spool folder: ``spool_dir``, else ``./spool/<node>``."""
    return Path(settings.spool_dir) if settings.spool_dir else Path("spool") / settings.node

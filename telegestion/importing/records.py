"""Turning import rows into checked records, with no database in sight.

Each parser gets a row and a read-only snapshot of the directory (what the database already
holds), and returns either a record ready to be written or the reason the row is refused. Rules
that span rows (a carer code used twice in one file) are checked over the whole list, so that
every bad line of a file is reported at once, not just the first.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable

from ..localtime import LocalTimeError, parse_instant, zone
from ..model.vocab import (
    LANGUAGES,
    NUMBER_KINDS,
    PUNCH_KINDS,
    PUNCH_SOURCES,
    ROUNDING_DIRECTIONS,
    ROUNDING_RULES,
    ROUNDING_STEPS,
)
from ..phones import PhoneNumberError, is_supported_region, parse_strict
from .csvfile import Row


class RowError(ValueError):
    """Why one row is refused."""


@dataclasses.dataclass(frozen=True)
class CompanyRef:
    id: int | None
    code: str
    timezone: str
    region: str


@dataclasses.dataclass
class Directory:
    """What the database holds that rows refer to; records of earlier files are folded in."""

    companies: dict[str, CompanyRef] = dataclasses.field(default_factory=dict)
    clients: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    carers: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)
    # (company code, carer code) -> carer_ref holding it
    carer_codes: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    # (company code, landline E.164) -> client_ref holding it
    landlines: dict[tuple[str, str], str] = dataclasses.field(default_factory=dict)
    # service number E.164 -> kind
    numbers: dict[str, str] = dataclasses.field(default_factory=dict)


def _digits(value: str, length: int, what: str) -> str:
    if len(value) != length or not value.isdigit():
        raise RowError(f"{what} must be exactly {length} digits, not {value!r}")
    return value


def _required(values: dict[str, str], column: str) -> str:
    value = values.get(column, "")
    if not value:
        raise RowError(f"{column} is empty")
    return value


def _company(values: dict[str, str], directory: Directory) -> CompanyRef:
    code = _digits(_required(values, "company_code"), 3, "company_code")
    company = directory.companies.get(code)
    if company is None:
        raise RowError(f"unknown company {code} (import companies first)")
    return company


def _bool(value: str, column: str, default: bool) -> bool:
    text = value.strip().lower()
    if text == "":
        return default
    if text in ("1", "true", "yes", "y", "oui", "o", "vrai"):
        return True
    if text in ("0", "false", "no", "n", "non", "faux"):
        return False
    raise RowError(f"{column} must be true or false, not {value!r}")


def _int_setting(value: str, column: str, low: int, high: int) -> int:
    try:
        number = int(value)
    except ValueError:
        raise RowError(f"{column} must be a whole number, not {value!r}") from None
    if not low <= number <= high:
        raise RowError(f"{column} must be between {low} and {high}, not {number}")
    return number


# --- companies ---------------------------------------------------------------------------

COMPANY_SETTINGS_INT = {
    "arrival_tolerance_min": (0, 240),
    "departure_tolerance_min": (0, 240),
    "match_window_min": (0, 1440),
    "max_visit_hours": (1, 48),
    "min_visit_min": (0, 240),
    "late_alert_min": (0, 240),
}
COMPANY_COLUMNS = ("code", "name", "timezone", "region", "language")
COMPANY_OPTIONAL = (
    *COMPANY_SETTINGS_INT,
    "task_codes_enabled",
    "rounding_rule",
    "rounding_step_min",
    "rounding_direction",
)


@dataclasses.dataclass(frozen=True)
class CompanyRecord:
    code: str
    name: str
    timezone: str
    region: str
    language: str
    settings: dict[str, object]


def parse_company(values: dict[str, str], _directory: Directory) -> CompanyRecord:
    code = _digits(_required(values, "code"), 3, "code")
    name = _required(values, "name")
    tz_name = values.get("timezone") or "Europe/Paris"
    try:
        zone(tz_name)
    except LocalTimeError as exc:
        raise RowError(str(exc)) from None
    region = (values.get("region") or "FR").upper()
    if not is_supported_region(region):
        raise RowError(f"unknown phone region {region!r} (a country code such as FR, RE, GP)")
    language = (values.get("language") or "fr").lower()
    if language not in LANGUAGES:
        raise RowError(f"language must be one of {', '.join(LANGUAGES)}, not {language!r}")
    settings: dict[str, object] = {}
    for column, (low, high) in COMPANY_SETTINGS_INT.items():
        if values.get(column):
            settings[column] = _int_setting(values[column], column, low, high)
    if values.get("task_codes_enabled"):
        settings["task_codes_enabled"] = _bool(
            values["task_codes_enabled"], "task_codes_enabled", False
        )
    if values.get("rounding_rule"):
        if values["rounding_rule"] not in ROUNDING_RULES:
            raise RowError(f"rounding_rule must be one of {', '.join(ROUNDING_RULES)}")
        settings["rounding_rule"] = values["rounding_rule"]
    if values.get("rounding_step_min"):
        step = _int_setting(values["rounding_step_min"], "rounding_step_min", 0, 30)
        if step not in ROUNDING_STEPS:
            raise RowError(
                f"rounding_step_min must be one of {', '.join(map(str, ROUNDING_STEPS))}"
            )
        settings["rounding_step_min"] = step
    if values.get("rounding_direction"):
        if values["rounding_direction"] not in ROUNDING_DIRECTIONS:
            raise RowError(f"rounding_direction must be one of {', '.join(ROUNDING_DIRECTIONS)}")
        settings["rounding_direction"] = values["rounding_direction"]
    return CompanyRecord(code, name, tz_name, region, language, settings)


# --- numbers -----------------------------------------------------------------------------

NUMBER_COLUMNS = ("number", "kind", "company_code")


@dataclasses.dataclass(frozen=True)
class NumberRecord:
    number_e164: str
    number_raw: str
    kind: str
    company_code: str | None


def parse_number(values: dict[str, str], directory: Directory) -> NumberRecord:
    kind = _required(values, "kind").lower()
    if kind not in NUMBER_KINDS:
        raise RowError(f"kind must be one of {', '.join(NUMBER_KINDS)}, not {kind!r}")
    company: CompanyRef | None = None
    if values.get("company_code"):
        company = _company(values, directory)
        if kind == "shared":
            raise RowError("a shared number belongs to no company: leave company_code empty")
    elif kind == "dedicated":
        raise RowError("a dedicated number needs its company_code")
    raw = _required(values, "number")
    try:
        e164 = parse_strict(raw, company.region if company else "FR")
    except PhoneNumberError as exc:
        raise RowError(str(exc)) from None
    return NumberRecord(e164, raw, kind, company.code if company else None)


# --- clients -----------------------------------------------------------------------------

CLIENT_COLUMNS = ("company_code", "client_ref", "name", "landlines")


@dataclasses.dataclass(frozen=True)
class ClientRecord:
    company_code: str
    client_ref: str
    name: str
    landlines: tuple[tuple[str, str], ...]  # (E.164, raw)


def parse_client(values: dict[str, str], directory: Directory) -> ClientRecord:
    company = _company(values, directory)
    ref = _required(values, "client_ref")
    name = _required(values, "name")
    landlines: list[tuple[str, str]] = []
    for part in values.get("landlines", "").split(";"):
        raw = part.strip()
        if not raw:
            continue
        try:
            e164 = parse_strict(raw, company.region)
        except PhoneNumberError as exc:
            raise RowError(f"landline {exc}") from None
        if e164 in (n for n, _ in landlines):
            raise RowError(f"landline {raw} is listed twice")
        landlines.append((e164, raw))
    return ClientRecord(company.code, ref, name, tuple(landlines))


def check_clients(rows: list[tuple[Row, ClientRecord]], directory: Directory) -> dict[int, str]:
    """One landline belongs to one client of a company, in the file and in the database."""
    errors: dict[int, str] = {}
    in_file = {(r.company_code, r.client_ref) for _, r in rows}
    seen_refs: dict[tuple[str, str], int] = {}
    owner: dict[tuple[str, str], tuple[str, int]] = {}
    for row, rec in rows:
        key = (rec.company_code, rec.client_ref)
        if key in seen_refs:
            errors[row.line] = f"client_ref {rec.client_ref} already on line {seen_refs[key]}"
            continue
        seen_refs[key] = row.line
        for e164, raw in rec.landlines:
            lkey = (rec.company_code, e164)
            if lkey in owner:
                other_ref, other_line = owner[lkey]
                errors[row.line] = (
                    f"landline {raw} is also given to client {other_ref} on line {other_line}"
                )
                break
            owner[lkey] = (rec.client_ref, row.line)
            db_owner = directory.landlines.get(lkey)
            if (
                db_owner is not None
                and db_owner != rec.client_ref
                and (rec.company_code, db_owner) not in in_file
            ):
                errors[row.line] = f"landline {raw} already belongs to client {db_owner}"
                break
    return errors


# --- carers ------------------------------------------------------------------------------

CARER_COLUMNS = ("company_code", "carer_ref", "carer_code", "name", "mobile", "active")


@dataclasses.dataclass(frozen=True)
class CarerRecord:
    company_code: str
    carer_ref: str
    carer_code: str
    name: str
    mobile_e164: str | None
    mobile_raw: str | None
    active: bool


def parse_carer(values: dict[str, str], directory: Directory) -> CarerRecord:
    company = _company(values, directory)
    ref = _required(values, "carer_ref")
    code = _digits(_required(values, "carer_code"), 5, "carer_code")
    name = _required(values, "name")
    mobile_raw = values.get("mobile") or None
    mobile = None
    if mobile_raw:
        try:
            mobile = parse_strict(mobile_raw, company.region)
        except PhoneNumberError as exc:
            raise RowError(f"mobile {exc}") from None
    active = _bool(values.get("active", ""), "active", True)
    return CarerRecord(company.code, ref, code, name, mobile, mobile_raw, active)


def check_carers(rows: list[tuple[Row, CarerRecord]], directory: Directory) -> dict[int, str]:
    """A carer code names one carer within its company, in the file and in the database."""
    errors: dict[int, str] = {}
    in_file = {(r.company_code, r.carer_ref) for _, r in rows}
    seen_refs: dict[tuple[str, str], int] = {}
    seen_codes: dict[tuple[str, str], tuple[str, int]] = {}
    for row, rec in rows:
        key = (rec.company_code, rec.carer_ref)
        if key in seen_refs:
            errors[row.line] = f"carer_ref {rec.carer_ref} already on line {seen_refs[key]}"
            continue
        seen_refs[key] = row.line
        ckey = (rec.company_code, rec.carer_code)
        if ckey in seen_codes:
            other_ref, other_line = seen_codes[ckey]
            errors[row.line] = (
                f"carer_code {rec.carer_code} is also given to {other_ref} on line {other_line}"
            )
            continue
        seen_codes[ckey] = (rec.carer_ref, row.line)
        holder = directory.carer_codes.get(ckey)
        if (
            holder is not None
            and holder != rec.carer_ref
            and (rec.company_code, holder) not in in_file
        ):
            errors[row.line] = f"carer_code {rec.carer_code} already belongs to carer {holder}"
    return errors


# --- planning ----------------------------------------------------------------------------

PLANNING_COLUMNS = (
    "company_code",
    "intervention_ref",
    "client_ref",
    "carer_ref",
    "start",
    "end",
    "service",
    "financer",
)


@dataclasses.dataclass(frozen=True)
class PlanningRecord:
    company_code: str
    intervention_ref: str
    client_ref: str
    carer_ref: str
    start: dt.datetime
    end: dt.datetime
    service: str
    financer: str


def _instant(values: dict[str, str], column: str, company: CompanyRef) -> dt.datetime:
    try:
        return parse_instant(_required(values, column), company.timezone)
    except LocalTimeError as exc:
        raise RowError(f"{column}: {exc}") from None


def parse_planning(values: dict[str, str], directory: Directory) -> PlanningRecord:
    company = _company(values, directory)
    ref = _required(values, "intervention_ref")
    client_ref = _required(values, "client_ref")
    if (company.code, client_ref) not in directory.clients:
        raise RowError(f"unknown client {client_ref} in company {company.code}")
    carer_ref = _required(values, "carer_ref")
    if (company.code, carer_ref) not in directory.carers:
        raise RowError(f"unknown carer {carer_ref} in company {company.code}")
    start = _instant(values, "start", company)
    end = _instant(values, "end", company)
    if end <= start:
        raise RowError(f"end {values['end']} is not after start {values['start']}")
    if end - start > dt.timedelta(hours=48):
        raise RowError("an intervention longer than 48 hours is not plausible")
    return PlanningRecord(
        company.code,
        ref,
        client_ref,
        carer_ref,
        start,
        end,
        values.get("service", ""),
        values.get("financer", ""),
    )


def check_unique(
    rows: Iterable[tuple[Row, object]], key: Callable[[object], tuple[str, ...]], what: str
) -> dict[int, str]:
    errors: dict[int, str] = {}
    seen: dict[tuple[str, ...], int] = {}
    for row, rec in rows:
        k = key(rec)
        if k in seen:
            errors[row.line] = f"{what} {k[-1]} already on line {seen[k]}"
        else:
            seen[k] = row.line
    return errors


# --- punches -----------------------------------------------------------------------------

PUNCH_COLUMNS = (
    "company_code",
    "carer_ref",
    "client_ref",
    "caller_number",
    "kind",
    "at",
    "source",
    "ref",
)


@dataclasses.dataclass(frozen=True)
class PunchRecord:
    company_code: str
    carer_ref: str
    client_ref: str | None
    caller_raw: str | None
    caller_e164: str | None
    caller_withheld: bool
    kind: str
    at: dt.datetime
    source: str
    ref: str


def parse_punch(values: dict[str, str], directory: Directory) -> PunchRecord:
    company = _company(values, directory)
    carer_ref = _required(values, "carer_ref")
    if (company.code, carer_ref) not in directory.carers:
        raise RowError(f"unknown carer {carer_ref} in company {company.code}")
    kind = _required(values, "kind").lower()
    if kind not in PUNCH_KINDS:
        raise RowError(f"kind must be arrival or departure, not {kind!r}")
    source = _required(values, "source").lower()
    if source not in PUNCH_SOURCES:
        raise RowError(f"source must be one of {', '.join(PUNCH_SOURCES)}, not {source!r}")
    ref = _required(values, "ref")
    at = _instant(values, "at", company)
    client_ref = values.get("client_ref") or None
    caller_raw = values.get("caller_number") or None
    caller_e164 = None
    if client_ref is not None and (company.code, client_ref) not in directory.clients:
        raise RowError(f"unknown client {client_ref} in company {company.code}")
    if caller_raw is not None:
        try:
            caller_e164 = parse_strict(caller_raw, company.region)
        except PhoneNumberError as exc:
            raise RowError(f"caller_number {exc}") from None
        owner = directory.landlines.get((company.code, caller_e164))
        if client_ref is None:
            client_ref = owner
        elif owner is not None and owner != client_ref:
            raise RowError(
                f"caller_number {caller_raw} is the landline of client {owner}, not {client_ref}"
            )
    withheld = caller_raw is None and values.get("client_ref", "") == ""
    return PunchRecord(
        company.code,
        carer_ref,
        client_ref,
        caller_raw,
        caller_e164,
        withheld,
        kind,
        at,
        source,
        ref,
    )

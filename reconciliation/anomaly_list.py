"""Anomalies as coordinators read them: references instead of ids, local times.

``telegestion anomalies`` prints these lines; the columns are those of SPEC.md section 6, and
each line carries its audit trail of resolutions (who decided what, when, why) for the formats
that can hold it.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Engine

from reconciliation.exports import local_iso
from reconciliation.sql_access import Sql
from reconciliation.store import in_transaction

COLUMNS = (
    "id",
    "company_code",
    "code",
    "status",
    "carer_ref",
    "client_ref",
    "intervention_ref",
    "at",
    "detail",
)


@dataclass(frozen=True, slots=True)
class AnomalyLine:
    id: int
    company_code: str
    code: str
    status: str
    carer_ref: str
    client_ref: str
    intervention_ref: str
    at: str
    detail: dict[str, Any]
    resolutions: tuple[dict[str, Any], ...] = ()

    def cells(self) -> tuple[str | int, ...]:
        """The CSV cells: ``detail`` as compact JSON with sorted keys (stable bytes)."""
        return (
            self.id,
            self.company_code,
            self.code,
            self.status,
            self.carer_ref,
            self.client_ref,
            self.intervention_ref,
            self.at,
            json.dumps(self.detail, sort_keys=True, ensure_ascii=False, separators=(",", ":")),
        )


def list_anomalies(
    engine: Engine,
    *,
    company_code: str | None = None,
    status: str | None = None,
    code: str | None = None,
) -> list[AnomalyLine]:
    """Matching anomalies, by company, time and id. ``at`` is local to the anomaly's company
    (an anomaly without a company, a lock-out on a shared number, is shown in UTC)."""

    def work(sql: Sql) -> list[AnomalyLine]:
        clauses, params = [], {}
        if company_code is not None:
            clauses.append("co.code = :company")
            params["company"] = company_code
        if status is not None:
            clauses.append("a.status = :status")
            params["status"] = status
        if code is not None:
            clauses.append("a.code = :code")
            params["code"] = code
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = sql.fetch(
            "SELECT a.id, co.code, co.timezone, a.code, a.status, ca.carer_ref, cl.client_ref,"
            " i.intervention_ref, a.at, a.detail"
            " FROM anomalies a"
            " LEFT JOIN companies co ON co.id = a.company_id"
            " LEFT JOIN carers ca ON ca.id = a.carer_id"
            " LEFT JOIN clients cl ON cl.id = a.client_id"
            " LEFT JOIN interventions i ON i.id = a.intervention_id" + where,
            **params,
        )
        lines = [
            AnomalyLine(
                id=aid,
                company_code=company or "",
                code=anomaly_code,
                status=state,
                carer_ref=carer or "",
                client_ref=client or "",
                intervention_ref=ref or "",
                at=local_iso(sql.instant(at), timezone or "UTC") or "",
                detail=sql.document(detail),
            )
            for aid, company, timezone, anomaly_code, state, carer, client, ref, at, detail in rows
        ]
        lines.sort(key=lambda line: (line.company_code, line.at, line.id))
        trails = _trails(sql, [line.id for line in lines])
        return [replace(line, resolutions=trails.get(line.id, ())) for line in lines]

    return in_transaction(engine, work, write=False)


def _trails(sql: Sql, anomaly_ids: list[int]) -> dict[int, tuple[dict[str, Any], ...]]:
    """Every resolution of these anomalies, oldest first, as the coordinator entered it."""
    if not anomaly_ids:
        return {}
    found: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for anomaly_id, action, reason, note, params, login, created in sql.fetch(
        "SELECT r.anomaly_id, r.action, r.reason_code, r.note, r.params, u.login, r.created_at"
        " FROM anomaly_resolutions r LEFT JOIN users u ON u.id = r.user_id"
        " WHERE r.anomaly_id IN_LIST(:ids) ORDER BY r.id",
        ids=anomaly_ids,
    ):
        at = sql.instant(created)
        found[anomaly_id].append(
            {
                "action": action,
                "reason": reason,
                "note": note or "",
                "params": sql.document(params),
                "user": login,
                "at": at.isoformat(timespec="seconds") if at else None,
            }
        )
    return {key: tuple(value) for key, value in found.items()}

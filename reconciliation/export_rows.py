"""The exports' rows, read from the core model that reconciliation keeps up to date.

Billing and payroll read planned interventions only (status, realised start, end, minutes and
who did it), never visits or punches: an export is a plain read, repeatable at any time, and the
bytes change only where a reconciliation or a resolution changed an intervention.
"""

from __future__ import annotations

from datetime import date

from sqlalchemy import Engine

from reconciliation.db_load import load_companies
from reconciliation.exports import InterventionRow
from reconciliation.scope import day_bounds
from reconciliation.sql_access import Sql
from reconciliation.store import in_transaction


class UnknownCompany(LookupError):
    """No company with that code."""


def intervention_rows(
    engine: Engine, first: date, last: date, *, company_code: str | None = None
) -> list[InterventionRow]:
    """Every planned intervention starting on local days ``first`` to ``last`` (included).

    The carer of a realised intervention is the one who did it (a substitute is paid for it);
    otherwise the planned carer.
    """

    def work(sql: Sql) -> list[InterventionRow]:
        companies = load_companies(sql)
        wanted = sorted(companies.codes)
        if company_code is not None:
            found = companies.id_of(company_code)
            if found is None:
                raise UnknownCompany(f"unknown company code {company_code!r}")
            wanted = [found]
        rows: list[InterventionRow] = []
        for company_id in wanted:
            timezone = companies.rules[company_id].timezone
            start, _ = day_bounds(first, timezone)
            _, end = day_bounds(last, timezone)
            for (
                ref,
                client_ref,
                planned_carer,
                done_by,
                planned_start,
                planned_end,
                status,
                realised_start,
                realised_end,
                minutes,
                service,
                financer,
            ) in sql.fetch(
                "SELECT i.intervention_ref, cl.client_ref, pc.carer_ref, rc.carer_ref,"
                " i.planned_start, i.planned_end, i.status, i.realised_start, i.realised_end,"
                " i.realised_minutes, i.service, i.financer"
                " FROM interventions i"
                " JOIN clients cl ON cl.id = i.client_id"
                " JOIN carers pc ON pc.id = i.carer_id"
                " LEFT JOIN carers rc ON rc.id = i.realised_carer_id"
                " WHERE i.company_id = :company AND i.planned_start >= :start"
                " AND i.planned_start < :end",
                company=company_id,
                start=start,
                end=end,
            ):
                p_start, p_end = sql.instant(planned_start), sql.instant(planned_end)
                assert p_start is not None and p_end is not None
                realised = status == "realised"
                rows.append(
                    InterventionRow(
                        company_code=companies.codes[company_id],
                        intervention_ref=ref,
                        client_ref=client_ref,
                        carer_ref=done_by if realised and done_by else planned_carer,
                        planned_start=p_start,
                        planned_end=p_end,
                        status=status,
                        realised_start=sql.instant(realised_start) if realised else None,
                        realised_end=sql.instant(realised_end) if realised else None,
                        realised_minutes=minutes if realised else None,
                        service=service or "",
                        financer=financer or "",
                        timezone=timezone,
                    )
                )
        return rows

    return in_transaction(engine, work, write=False)

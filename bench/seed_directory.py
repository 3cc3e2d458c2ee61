"""A synthetic directory for load runs: one company on a dedicated number, one on the shared
number, N carers and N clients (one landline each) per company, written with bulk inserts."""

from __future__ import annotations

from sqlalchemy import Engine, insert

from telegestion import migrate
from telegestion.model import Carer, Client, ClientLandline, Company, ServiceNumber

SHARED = "0800123456"
DEDICATED = "0800117117"
COMPANIES = (("042", SHARED, "shared"), ("117", DEDICATED, "dedicated"))


def carer_code(index: int) -> str:
    return f"{10000 + index:05d}"


def landline(company: int, index: int) -> str:
    """A valid Paris number, distinct per company and index."""
    return f"01{4 + company}{index:07d}"


def seed(engine: Engine, per_company: int) -> None:
    migrate.upgrade(engine)
    with engine.begin() as conn:
        for n, (code, number, kind) in enumerate(COMPANIES):
            company_id = conn.execute(
                insert(Company).values(code=code, name=f"Load {code}").returning(Company.id)
            ).scalar_one()
            conn.execute(
                insert(ServiceNumber).values(
                    number_e164="+33" + number[1:],
                    number_raw=number,
                    kind=kind,
                    company_id=company_id if kind == "dedicated" else None,
                )
            )
            conn.execute(
                insert(Carer),
                [
                    {
                        "company_id": company_id,
                        "carer_ref": f"K{i}",
                        "carer_code": carer_code(i),
                        "name": f"Carer {i}",
                        "active": True,
                    }
                    for i in range(per_company)
                ],
            )
            client_ids = (
                conn.execute(
                    insert(Client).returning(Client.id, sort_by_parameter_order=True),
                    [
                        {"company_id": company_id, "client_ref": f"C{i}", "name": f"Client {i}"}
                        for i in range(per_company)
                    ],
                )
                .scalars()
                .all()
            )
            conn.execute(
                insert(ClientLandline),
                [
                    {
                        "company_id": company_id,
                        "client_id": cid,
                        "number_e164": "+33" + landline(n, i)[1:],
                        "number_raw": landline(n, i),
                    }
                    for i, cid in enumerate(client_ids)
                ],
            )

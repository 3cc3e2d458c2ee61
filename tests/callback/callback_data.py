"""The directory every call-back test starts from: two companies, carers, clients, planning."""

from __future__ import annotations

import dataclasses
import datetime as dt

from sqlalchemy.orm import Session, sessionmaker

from telegestion.model import (
    Carer,
    Client,
    ClientLandline,
    Company,
    PlannedIntervention,
    ServiceNumber,
)

#: 09:05 in Paris, 08:05 in London: Fatou's 9:00 visit at Mrs Dubois is under way.
T0 = dt.datetime(2026, 11, 24, 8, 5, tzinfo=dt.UTC)

CALLBACK_NUMBER = "+33970809000"
CALLBACK_NUMBER_117 = "+442071838750"
FATOU_MOBILE = "+33612345678"
JANE_MOBILE = "+447700900123"
NADIA_MOBILE = "+33734567890"  # inactive carer
AMINA_MOBILE = "+33698765432"  # a carer of both companies, same code in both
STRANGER_MOBILE = "+33611111111"


@dataclasses.dataclass(frozen=True)
class Directory:
    company_fr: int
    company_en: int
    fatou: int
    jane: int
    amina_fr: int
    amina_en: int
    dubois: int
    martin: int
    lefevre: int
    whitfield: int
    price: int


def _utc(y: int, mo: int, d: int, h: int, mi: int) -> dt.datetime:
    return dt.datetime(y, mo, d, h, mi, tzinfo=dt.UTC)


def populate(sessions: sessionmaker[Session]) -> Directory:
    """Two companies (French, English), their carers, clients and the morning's planning."""
    with sessions() as s, s.begin():
        fr = Company(code="042", name="Aide du Val", timezone="Europe/Paris", language="fr")
        en = Company(
            code="117",
            name="Garden Care",
            timezone="Europe/London",
            region="GB",
            language="en",
            task_codes_enabled=True,
        )
        s.add_all([fr, en])
        s.flush()
        s.add_all(
            [
                ServiceNumber(
                    number_e164=CALLBACK_NUMBER, number_raw="09 70 80 90 00", kind="callback"
                ),
                ServiceNumber(
                    number_e164=CALLBACK_NUMBER_117,
                    number_raw="020 7183 8750",
                    kind="callback",
                    company_id=en.id,
                ),
                ServiceNumber(number_e164="+33800123456", number_raw="0800123456", kind="shared"),
            ]
        )

        def carer(
            company: Company, ref: str, code: str, name: str, mobile: str, active: bool = True
        ) -> Carer:
            row = Carer(
                company_id=company.id,
                carer_ref=ref,
                carer_code=code,
                name=name,
                mobile_e164=mobile,
                mobile_raw=mobile,
                active=active,
            )
            s.add(row)
            return row

        fatou = carer(fr, "I-01", "12345", "Fatou Diallo", FATOU_MOBILE)
        carer(fr, "I-04", "34567", "Nadia Benali", NADIA_MOBILE, active=False)
        amina_fr = carer(fr, "I-05", "11111", "Amina Traoré", AMINA_MOBILE)
        jane = carer(en, "J-01", "54321", "Jane Moss", JANE_MOBILE)
        amina_en = carer(en, "J-05", "11111", "Amina Traore", AMINA_MOBILE)

        def client(company: Company, ref: str, name: str, landline: str | None = None) -> Client:
            row = Client(company_id=company.id, client_ref=ref, name=name)
            s.add(row)
            s.flush()
            if landline:
                s.add(
                    ClientLandline(
                        company_id=company.id,
                        client_id=row.id,
                        number_e164=landline,
                        number_raw=landline,
                    )
                )
            return row

        dubois = client(fr, "C-1", "Mme Jeanne Dubois", "+33145678912")
        martin = client(fr, "C-2", "M. René Martin")
        lefevre = client(fr, "C-3", "Mme Simone Lefèvre")
        whitfield = client(en, "E-1", "Mrs Ada Whitfield")
        price = client(en, "E-2", "Mr Owen Price")
        s.flush()

        def plan(
            company: Company, ref: str, who: Carer, whom: Client, start: dt.datetime, hours: float
        ) -> None:
            s.add(
                PlannedIntervention(
                    company_id=company.id,
                    intervention_ref=ref,
                    client_id=whom.id,
                    carer_id=who.id,
                    planned_start=start,
                    planned_end=start + dt.timedelta(hours=hours),
                )
            )

        plan(fr, "P-1", fatou, dubois, _utc(2026, 11, 24, 8, 0), 1)  # 09:00 Paris
        plan(fr, "P-2", fatou, martin, _utc(2026, 11, 24, 10, 0), 1)  # 11:00 Paris
        plan(fr, "P-3", fatou, lefevre, _utc(2026, 11, 24, 14, 0), 1)  # 15:00: not around
        plan(en, "Q-1", jane, whitfield, _utc(2026, 11, 24, 8, 0), 1)  # 08:00 London
        plan(en, "Q-2", jane, price, _utc(2026, 11, 24, 9, 30), 1)  # 09:30 London
        plan(fr, "P-9", amina_fr, martin, _utc(2026, 11, 24, 7, 30), 1)
        s.flush()
        return Directory(
            fr.id,
            en.id,
            fatou.id,
            jane.id,
            amina_fr.id,
            amina_en.id,
            dubois.id,
            martin.id,
            lefevre.id,
            whitfield.id,
            price.id,
        )

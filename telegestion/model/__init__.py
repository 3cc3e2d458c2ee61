"""The one data model shared by the IVR, the call-back, reconciliation and the pages."""

from .base import Base, UTCDateTime, utcnow
from .callback import CallbackCall, CallbackMobile, CallbackRequest, CallbackWebhook
from .directory import Carer, Client, ClientLandline, Company, ServiceNumber
from .journal import Call, CallEvent, CodeFailure
from .planning import PlannedIntervention
from .punches import Punch
from .reconciliation import Anomaly, AnomalyResolution, Visit, VisitMatch
from .users import User, user_companies
from .web_sessions import LoginThrottle, WebSession

__all__ = [
    "Anomaly",
    "AnomalyResolution",
    "Base",
    "Call",
    "CallEvent",
    "CallbackCall",
    "CallbackMobile",
    "CallbackRequest",
    "CallbackWebhook",
    "Carer",
    "Client",
    "ClientLandline",
    "CodeFailure",
    "Company",
    "LoginThrottle",
    "PlannedIntervention",
    "Punch",
    "ServiceNumber",
    "UTCDateTime",
    "User",
    "Visit",
    "VisitMatch",
    "WebSession",
    "user_companies",
    "utcnow",
]

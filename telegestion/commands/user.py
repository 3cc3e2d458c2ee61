"""``telegestion user``: the people who log in to the coordinator and support pages.

The password is never an argument (it would sit in the shell history and in ``ps``): it is read
from standard input, or asked for twice on a terminal.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from ..model.vocab import USER_ROLES
from .context import UsageError, open_context


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "user",
        help="add, list or disable users of the coordinator and support pages",
        description="Users of the web pages. A coordinator reviews and resolves anomalies; "
        "support reads calls, traces and tickets (and anomalies, without resolving). Each user "
        "sees only the companies given with --company.",
    )
    actions = parser.add_subparsers(dest="user_command", metavar="ACTION")
    actions.required = True
    add = actions.add_parser(
        "add",
        help="create a user (password from standard input, or asked on a terminal)",
        description="Create a user. The password (at least 10 characters) is read from the "
        "first line of standard input, or asked for twice when standard input is a terminal.",
    )
    add.add_argument("login")
    add.add_argument("--role", required=True, choices=USER_ROLES)
    add.add_argument(
        "--company",
        metavar="CODE",
        action="append",
        required=True,
        help="a company this user sees (3-digit code); repeat for several",
    )
    add.set_defaults(func=run_add)
    listing = actions.add_parser("list", help="list users, their role, state and companies")
    listing.set_defaults(func=run_list)
    disable = actions.add_parser("disable", help="disable a user and end their sessions at once")
    disable.add_argument("login")
    disable.set_defaults(func=run_disable)


def _read_password() -> str:
    if sys.stdin.isatty():
        first = getpass.getpass("Password: ")
        if getpass.getpass("Password again: ") != first:
            raise UsageError("the two passwords differ")
        return first
    line = sys.stdin.readline()
    if not line:
        raise UsageError("no password on standard input")
    return line.rstrip("\r\n")


def run_add(args: argparse.Namespace) -> int:
    from ..web.accounts import AccountError, add_user

    ctx = open_context()
    ctx.require_schema()
    password = _read_password()
    try:
        with ctx.sessions() as session, session.begin():
            user = add_user(session, args.login, args.role, args.company, password)
            login, codes = user.login, sorted(c.code for c in user.companies)
    except AccountError as exc:
        raise UsageError(str(exc)) from None
    print(f"user: {login} added ({args.role}; companies {', '.join(codes)})")
    return 0


def run_list(args: argparse.Namespace) -> int:
    from ..web.accounts import list_users

    ctx = open_context()
    ctx.require_schema()
    with ctx.sessions() as session:
        lines = list_users(session)
    rows = [("login", "role", "state", "companies")] + [
        (u.login, u.role, "active" if u.active else "disabled", " ".join(u.company_codes))
        for u in lines
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())
    return 0


def run_disable(args: argparse.Namespace) -> int:
    from ..model import utcnow
    from ..web.accounts import AccountError, disable_user

    ctx = open_context()
    ctx.require_schema()
    try:
        with ctx.sessions() as session, session.begin():
            ended = disable_user(session, args.login, utcnow())
    except AccountError as exc:
        raise UsageError(str(exc)) from None
    print(f"user: {args.login} disabled; {ended} session(s) ended")
    return 0

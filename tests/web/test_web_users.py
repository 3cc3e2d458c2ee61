"""``telegestion user add/list/disable`` as an administrator runs them."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from telegestion.cli import main
from telegestion.model import Company, User

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def run(
    engine: Engine,
    sessions: sessionmaker[Session],
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Run:
    """``run(*args, stdin=...)`` -> (exit status, stdout, stderr), companies 042 and 117 exist."""
    with sessions() as session, session.begin():
        session.add_all([Company(code="042", name="A"), Company(code="117", name="B")])
    monkeypatch.setenv("TELEGESTION_DATABASE_URL", db_url)
    monkeypatch.chdir(tmp_path)

    def invoke(*args: str, stdin: str = "") -> tuple[int, str, str]:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
        try:
            code = main(list(args))
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = capsys.readouterr()
        return code, out, err

    return invoke


def test_add_list_disable(run: Run, sessions: sessionmaker[Session]) -> None:
    """A user is added with a hashed password from standard input, listed, then disabled."""
    added = run(
        "user", "add", "Marie.D", "--role", "coordinator", "--company", "042", "--company", "117",
        stdin="a long password\n",
    )  # fmt: skip
    assert added[0] == 0 and "marie.d added" in added[1]
    with sessions() as session:
        user = session.scalars(select(User)).one()
        assert user.password_hash.startswith("$argon2id$") and user.role == "coordinator"
        assert sorted(c.code for c in user.companies) == ["042", "117"]
    assert run("user", "add", "sam", "--role", "support", "--company", "042",
               stdin="another password")[0] == 0  # fmt: skip
    code, out, _ = run("user", "list")
    assert code == 0
    assert out.splitlines()[1:] == [
        "marie.d  coordinator  active  042 117",
        "sam      support      active  042",
    ]
    assert run("user", "disable", "MARIE.D")[0] == 0
    assert "marie.d  coordinator  disabled  042 117" in run("user", "list")[1]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (("add", "x1", "--role", "support", "--company", "042"), "short", "at least 10"),
        (("add", "x1", "--role", "support", "--company", "999"), "long password!", "no company"),
        (("add", "x y", "--role", "support", "--company", "042"), "long password!", "login"),
        (("add", "x1", "--role", "support", "--company", "042"), "", "no password"),
        (("disable", "nobody"), "", "no user 'nobody'"),
    ],
)
def test_errors_are_one_line_and_exit_2(
    run: Run, sessions: sessionmaker[Session], args: tuple[str, ...], stdin: str, message: str
) -> None:
    """Each refusal is one line on stderr, exit 2, and no user is written."""
    code, _, err = run("user", *args, stdin=stdin)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    with sessions() as session:
        assert session.scalars(select(User)).all() == []


def test_a_login_is_unique(run: Run) -> None:
    """Adding the same login twice (whatever its case) is refused."""
    assert run("user", "add", "ann", "--role", "support", "--company", "042",
               stdin="long password!")[0] == 0  # fmt: skip
    code, _, err = run("user", "add", "ANN", "--role", "support", "--company", "042",
                       stdin="long password!")  # fmt: skip
    assert code == 2 and "exists already" in err

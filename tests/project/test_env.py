"""What the settings read: the .env file and the two database URLs (shared.env)."""

from __future__ import annotations

import pytest

from shared.env import SettingError, database, read_env_file


def test_env_file_quoting_and_no_expansion(tmp_path):
    env = tmp_path / ".env"
    env.write_text(
        "# a comment\n"
        "PLAIN=abc\n"
        'QUOTED="a b"\n'
        "export EXPORTED=yes\n"
        "DOLLAR=pa$$w${HOME}rd\n"  # a password is never expanded
        "HASH='x#y'\n"
    )
    assert read_env_file(env) == {
        "PLAIN": "abc",
        "QUOTED": "a b",
        "EXPORTED": "yes",
        "DOLLAR": "pa$$w${HOME}rd",
        "HASH": "x#y",
    }
    assert read_env_file(tmp_path / "missing") == {}


def test_a_url_names_server_and_role_and_keeps_the_strategy_database(monkeypatch):
    monkeypatch.setenv("X_URL", "postgresql://us%40er:p%2Fw@db.example:6432/?sslmode=require")
    conf = database("X_URL", "tenancy_rls", OPTIONS={"pool": True})
    assert (conf["USER"], conf["PASSWORD"], conf["HOST"], conf["PORT"], conf["NAME"]) == (
        "us@er", "p/w", "db.example", "6432", "tenancy_rls",
    )  # fmt: skip
    assert conf["OPTIONS"] == {"connect_timeout": 5, "sslmode": "require", "pool": True}
    monkeypatch.setenv("X_URL", "postgresql://u:p@/other?connect_timeout=30")
    conf = database("X_URL", "tenancy_rls")
    assert (conf["HOST"], conf["PORT"], conf["NAME"]) == ("127.0.0.1", "5432", "other")
    assert conf["OPTIONS"]["connect_timeout"] == 30


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://u:p@h/", "must be a postgresql:// URL"),
        ("postgresql://u:p@h/?options=-c%20app.account_id%3D3", "options cannot be set"),
        ("postgresql://u:p@h/?currentSchema=other", "options cannot be set"),
        ("postgresql://u:p@h/?pool=1", "pool cannot be set"),
    ],
)
def test_a_url_cannot_carry_session_settings(monkeypatch, url, message):
    """A session setting (search_path, app.account_id) would outlive every transaction."""
    monkeypatch.setenv("X_URL", url)
    with pytest.raises(SettingError, match=message):
        database("X_URL", "tenancy_rls")

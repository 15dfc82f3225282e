"""SQL built by playbooks quotes every name and value (issue 17): setup_finish pasted the
application's database user into SQL unquoted, and the Django admin could save any name, so a
superuser's `COPY ... TO PROGRAM` was one inventory edit away."""

from types import SimpleNamespace

import pytest

from clusters.models import Cluster, ClusterSecret
from jobs.playbooks import setup_finish
from jobs.playbooks.base import StepFailed
from jobs.playbooks.sql import quote_ident, quote_literal

pytestmark = pytest.mark.django_db
EVIL = "app; COPY (SELECT 1) TO PROGRAM 'id'; --"


@pytest.mark.parametrize(
    ("name", "quoted"),
    [("app", '"app"'), ('we"ird', '"we""ird"'), (EVIL, f'"{EVIL}"')],
)
def test_quote_ident_keeps_any_name_one_identifier(name, quoted):
    assert quote_ident(name) == quoted


@pytest.mark.parametrize(
    ("value", "quoted"),
    [
        ("abc", "'abc'"),
        ("it's", "'it''s'"),
        ("a\\b", "E'a\\\\b'"),
        ("x'); DROP TABLE t; --", "'x''); DROP TABLE t; --'"),
    ],
)
def test_quote_literal_keeps_any_value_one_string(value, quoted):
    assert quote_literal(value) == quoted


@pytest.mark.parametrize("bad", ["", "a\0b"])
def test_quote_ident_refuses_what_postgresql_cannot_name(bad):
    with pytest.raises(StepFailed):
        quote_ident(bad)


def test_setup_finish_quotes_the_application_role_and_database(monkeypatch):
    # Saved as the Django admin could before models validated: no form was asked.
    cluster = Cluster.objects.create(name="pg1", database_name=EVIL, database_user=EVIL)
    for name, value in (("monitor", "Mon-pw-123"), ("application", "App-pw-456")):
        ClusterSecret.objects.create(cluster=cluster, name=name, value=value)
    sent: list[str] = []

    def psql(ctx, node, sql, **kwargs):
        sent.append(sql)
        return []  # no role, no database exists yet

    monkeypatch.setattr(setup_finish, "psql", psql)
    monkeypatch.setattr(setup_finish, "current_primary", lambda ctx: SimpleNamespace(name="n1"))
    setup_finish.database_roles(SimpleNamespace(cluster=cluster))
    everything = "\n".join(sent)
    assert f'CREATE ROLE "{EVIL}" LOGIN PASSWORD' in everything
    assert f"WHERE datname = '{EVIL.replace(chr(39), chr(39) * 2)}'" in everything
    assert f'CREATE DATABASE "{EVIL}" OWNER "{EVIL}";' in everything
    assert 'GRANT pg_monitor TO "hacenter_monitor";' in everything
    # Outside quotes, nothing of the name is left to run.
    assert "TO PROGRAM 'id'" not in everything.replace(f'"{EVIL}"', "").replace(
        f"'{EVIL.replace(chr(39), chr(39) * 2)}'", ""
    )

"""pgBackRest's config files (jobs/configs/pgbackrest.py) and the archive settings Patroni gets
when the cluster is backed up."""

import configparser
import dataclasses
import shlex
import shutil
import subprocess

import pytest

from jobs.configs import pgbackrest as conf
from jobs.configs import spec as paths
from jobs.configs.patroni import (
    patroni_config,
    patroni_config_dict,
    postgresql_parameters,
    replica_methods,
)
from jobs.playbooks import replica_method
from tests.unit.jobs.configs.test_configs import make_spec, yaml_load

LAYOUT = conf.BackupLayout(
    stanza="demo",
    repo_name="proxy",
    repo_address="192.0.2.10",
    repo_path="/var/lib/pgbackrest",
    retention_full=2,
    data_dir="/var/lib/postgresql/15/demo",
    databases=(conf.BackupHost("node1", "192.0.2.11"), conf.BackupHost("node2", "192.0.2.12")),
    cipher_pass="s3cret-passphrase",
)


def parsed(text: str) -> configparser.RawConfigParser:
    # pgBackRest repeats tls-server-auth; configparser would refuse duplicates.
    parser = configparser.RawConfigParser(strict=False)
    parser.read_string(text)
    return parser


def test_the_repository_holds_the_passphrase_and_names_every_database_node_over_tls():
    text = conf.repository_config(LAYOUT)
    cfg = parsed(text)
    assert cfg["global"]["repo1-cipher-type"] == "aes-256-cbc"
    assert cfg["global"]["repo1-cipher-pass"] == "s3cret-passphrase"
    assert cfg["global"]["repo1-retention-full"] == "2"
    assert cfg["demo"]["pg1-host"] == "192.0.2.11" and cfg["demo"]["pg2-host"] == "192.0.2.12"
    assert cfg["demo"]["pg2-host-type"] == "tls"
    assert cfg["demo"]["pg1-path"] == "/var/lib/postgresql/15/demo"
    # database nodes push WAL, a restore target fetches it: each by its certificate's CN
    auth = [ln for ln in text.splitlines() if ln.startswith("tls-server-auth=")]
    assert auth == [
        "tls-server-auth=node1=demo",
        "tls-server-auth=node2=demo",
        f"tls-server-auth={conf.RESTORE_CLIENT_CN}=demo",
    ]


def test_a_database_node_reaches_the_repository_and_lets_only_its_host_in():
    text = conf.database_config(LAYOUT)
    cfg = parsed(text)
    assert "cipher" not in text  # the passphrase stays on the repository host
    assert cfg["global"]["repo1-host"] == "192.0.2.10"
    assert cfg["global"]["repo1-host-type"] == "tls"
    assert cfg["global"]["repo1-host-key-file"] == conf.KEY_FILE
    assert [ln for ln in text.splitlines() if ln.startswith("tls-server-auth=")] == [
        "tls-server-auth=proxy=demo"
    ]
    assert cfg["demo"]["pg1-socket-path"] == "/run/postgresql"


def test_a_restore_target_runs_no_server():
    text = conf.restore_config(LAYOUT, "/var/lib/postgresql/15/restored")
    assert "tls-server" not in text and "cipher" not in text
    assert parsed(text)["demo"]["pg1-path"] == "/var/lib/postgresql/15/restored"


@pytest.mark.skipif(shutil.which("pgbackrest") is None, reason="pgbackrest is not installed")
@pytest.mark.parametrize("render", [conf.repository_config, conf.database_config])
def test_pgbackrest_itself_knows_every_option(tmp_path, render):
    """pgBackRest warns about an option it does not know when a command loads the file (`help`
    does not): `info`, aimed at nothing that answers (a missing repository, or a repository
    host on loopback), fails after reading it."""
    path = tmp_path / "pgbackrest.conf"
    path.write_text(render(LAYOUT).replace("/var/lib/pgbackrest", str(tmp_path / "repo")))
    result = subprocess.run(
        [
            *("pgbackrest", f"--config={path}", "--stanza=demo", "--log-level-console=warn"),
            *(f"--log-path={tmp_path}", f"--lock-path={tmp_path}", "--repo1-host=127.0.0.1"),
            *("--repo1-host-port=1", "--io-timeout=1", "info"),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    said = result.stdout + result.stderr
    assert "WARN" not in said and "requires option" not in said, said


def test_archiving_is_on_only_for_a_backed_up_cluster():
    plain = make_spec(tls=False)
    assert "archive_mode" not in postgresql_parameters(plain)
    backed = dataclasses.replace(plain, backup_stanza="demo", backup_repo="proxy")
    parameters = postgresql_parameters(backed)
    # `on`, never `always`: pgBackRest refuses `always`
    assert parameters["archive_mode"] == "on"
    assert parameters["archive_command"] == "pgbackrest --stanza=demo archive-push %p"
    assert parameters["archive_timeout"] == 60


def test_replicas_come_from_the_repository_only_once_it_holds_a_backup():
    plain = make_spec(tls=False)
    assert replica_methods(plain) == {"create_replica_methods": ["basebackup"]}
    configured = dataclasses.replace(plain, backup_stanza="demo", backup_repo="proxy")
    # backups configured but none taken yet: nothing to restore from
    assert replica_methods(configured) == {"create_replica_methods": ["basebackup"]}
    ready = dataclasses.replace(configured, backup_replicas=True)
    methods = replica_methods(ready)
    # the repository first, pg_basebackup from the primary when it fails
    assert methods["create_replica_methods"] == ["pgbackrest", "basebackup"]
    method = methods["pgbackrest"]
    assert method["keep_data"] is True and method["no_params"] is True
    argv = shlex.split(method["command"])
    assert argv[:2] == ["/bin/sh", "-c"]
    script = argv[2]
    # the data directory made first (pgBackRest refuses a missing one), then a delta restore
    # as a standby with the node's own config (which reaches the repository over TLS)
    assert script.startswith(f"install -d -m 0700 {paths.data_dir(ready)} && exec ")
    assert shlex.split(script.split(" && exec ")[1]) == [
        "/usr/bin/pgbackrest",
        f"--config={conf.CONFIG_FILE}",
        "--stanza=demo",
        "--delta",
        "--type=standby",
        "restore",
    ]
    # Patroni strips pgBackRest's recovery settings from postgresql.auto.conf: the WAL after
    # the backup comes from the archive through Patroni's own restore_command
    assert methods["recovery_conf"] == {
        "restore_command": "pgbackrest --stanza=demo archive-get %f %p"
    }


def test_patronis_file_carries_the_methods_and_reads_back_as_yaml():
    spec = dataclasses.replace(
        make_spec(tls=False), backup_stanza="demo", backup_repo="proxy", backup_replicas=True
    )
    node = spec.database_nodes[0]
    loaded = yaml_load(patroni_config(spec, node))["postgresql"]
    assert loaded["create_replica_methods"] == ["pgbackrest", "basebackup"]
    assert loaded["pgbackrest"] == patroni_config_dict(spec, node)["postgresql"]["pgbackrest"]
    assert loaded["basebackup"] == [{"checkpoint": "fast"}]


def test_the_copy_method_is_read_from_backup_label_and_patronis_log():
    restored = ["LABEL: pgBackRest backup started at 2026-12-05 10:44:47.98+00"]
    copied = ["LABEL: pg_basebackup base backup"]
    assert replica_method.label_method(restored) == replica_method.REPOSITORY
    assert replica_method.label_method(copied) == replica_method.PRIMARY
    assert replica_method.label_method([]) == ""
    log = [
        "2026-12-05 10:50:01,1 ERROR: Error creating replica using method pgbackrest: "
        "/bin/sh -c ... exited with code=1",
        "2026-12-05 10:50:09,2 INFO: replica has been created using basebackup",
    ]
    assert replica_method.patroni_lines(log)[1] == "replica has been created using basebackup"
    said = replica_method.describe(copied, log)
    assert said.startswith("copied by pg_basebackup from the primary after the repository failed")
    assert "Error creating replica using method pgbackrest" in said
    assert replica_method.describe(restored, log[1:]) == (
        "copied by pgBackRest restore from the repository"
    )

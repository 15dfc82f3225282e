"""A running Debian PostgreSQL as HA Center reads it before a take-over: its cluster line
(pg_lsclusters), what it says of itself (Inspection) and what each standby has for the copy
(StandbyFacts). Pure data and parsing; existing_postgres reads, existing_postgres_judge judges."""

from dataclasses import dataclass, field

from jobs.playbooks.base import StepFailed

# File settings the standbys must have too, when the server uses them.
FILE_SETTINGS = ("ssl_cert_file", "ssl_key_file", "ssl_ca_file", "ssl_crl_file")


@dataclass(frozen=True)
class DebianCluster:
    """One line of `pg_lsclusters -h`."""

    version: str
    name: str
    port: int
    status: str
    owner: str
    data_dir: str

    @property
    def unit(self) -> str:
        return f"postgresql@{self.version}-{self.name}.service"

    @property
    def config_dir(self) -> str:
        return f"/etc/postgresql/{self.version}/{self.name}"

    @property
    def online(self) -> bool:
        return self.status.split(",")[0] == "online"


def parse_lsclusters(lines: list[str]) -> list[DebianCluster]:
    """The clusters `pg_lsclusters -h` lists (lines it cannot read are skipped)."""
    found = []
    for line in lines:
        fields = line.split()
        if len(fields) >= 6 and fields[2].isdigit():
            found.append(DebianCluster(*fields[:2], int(fields[2]), *fields[3:6]))
    return found


@dataclass
class Inspection:
    """What the server said about itself; `extensions` maps each database to its extensions."""

    debian: DebianCluster
    info: dict
    hba_text: str
    ident_text: str
    extensions: dict[str, list[str]] = field(default_factory=dict)
    # The package each non-core extension comes from (dpkg -S of its control file).
    extension_packages: dict[str, str] = field(default_factory=dict)

    @property
    def settings(self) -> dict[str, dict]:
        return self.info.get("settings") or {}

    def setting(self, name: str) -> str:
        return (self.settings.get(name) or {}).get("value", "")

    @property
    def size_bytes(self) -> int:
        """What a standby's copy takes: every database, the tablespaces and the WAL."""
        databases = sum(d["size"] for d in self.info.get("databases") or [])
        return databases + int(self.info.get("wal_bytes") or 0)

    @property
    def outside_tablespaces(self) -> list[dict]:
        """Tablespaces with a directory of their own (not pg_default/pg_global)."""
        return [t for t in self.info.get("tablespaces") or [] if t.get("location")]

    @property
    def roles(self) -> list[dict]:
        return self.info.get("roles") or []


@dataclass(frozen=True)
class StandbyFacts:
    """What one standby has for the copy: free bytes where the data will go, and which of the
    paths the copy needs it lacks (with why)."""

    name: str
    free_bytes: int
    missing_paths: tuple[str, ...] = ()


def choose_cluster(clusters: list[DebianCluster], version: int) -> DebianCluster:
    """The one running Debian cluster to take over; StepFailed when there is none or several."""
    online = [c for c in clusters if c.online]
    if not online:
        listed = ", ".join(f"{c.version}/{c.name} {c.status}" for c in clusters) or "none"
        raise StepFailed(
            f"no running PostgreSQL on the master to take over (pg_lsclusters: {listed}); "
            "start it, or clear 'use the database already on the master'"
        )
    if len(online) > 1:
        listed = ", ".join(f"{c.version}/{c.name} on {c.port}" for c in online)
        raise StepFailed(
            f"several PostgreSQL clusters run on the master ({listed}); HA Center takes over "
            "exactly one: stop the others first"
        )
    return online[0]


def standby_paths(inspection: Inspection) -> list[tuple[str, str]]:
    """Paths each standby needs before the copy: (path, "dir" for an empty tablespace
    directory owned by postgres, "file" for a file PostgreSQL reads)."""
    wanted = [(t["location"], "dir") for t in inspection.outside_tablespaces]
    if inspection.setting("ssl") == "on":
        wanted += [(inspection.setting(s), "file") for s in FILE_SETTINGS if inspection.setting(s)]
    return wanted

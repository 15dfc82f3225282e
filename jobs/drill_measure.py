"""What a failover drill measures (issue 21 part 6), from its writer's ledger: pure arithmetic.

The writer (jobs.drill_writer) keeps one `Ack` per acknowledged insert: the row's id, the
address of the PostgreSQL server that committed it (`inet_server_addr()`, seen through the
proxy) and when the commit returned, on the worker's monotonic clock. The drill sends the off
to the primary's fence device at `off_at` on the same clock.

- RTO: from `off_at` to the first write a server other than the old primary acknowledged.
  Writes the old primary acknowledged after `off_at` (the device takes a moment to cut the
  power) do not end the outage.
- Outage: the writer's own gap, from the old primary's last acknowledged write to that first
  write elsewhere: what an application saw.
- RPO: acknowledged ids the new primary does not hold (read after the failover). On a
  synchronous cluster it must be 0; on an asynchronous one it is what the standby had not
  received when the power went.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Ack:
    """One acknowledged insert of the drill's writer."""

    id: int
    server: str  # the address of the PostgreSQL that committed it
    at: float  # time.monotonic() when the commit returned


@dataclass(frozen=True)
class Takeover:
    """The first write after the power-off on another server, and the times it gives."""

    first: Ack
    rto_s: float  # from the off to `first`
    outage_s: float  # from the old primary's last acknowledged write to `first`


def takeover(acks: list[Ack], old_server: str, off_at: float) -> Takeover | None:
    """The first write another server acknowledged after `off_at` (None: none yet)."""
    first = next((a for a in acks if a.at >= off_at and a.server != old_server), None)
    if first is None:
        return None
    before = [a.at for a in acks if a.server == old_server and a.at <= first.at]
    last_old = max(before, default=off_at)
    return Takeover(first=first, rto_s=first.at - off_at, outage_s=first.at - last_old)


def lost_ids(acks: list[Ack], stored: set[int]) -> list[int]:
    """The acknowledged ids the table does not hold, in order: the rows the failover lost."""
    return sorted(a.id for a in acks if a.id not in stored)


def ids_text(ids: list[int], most: int = 10) -> str:
    """ "17, 18, 19 and 4 more" for a log line."""
    shown = ", ".join(str(i) for i in ids[:most])
    return shown + (f" and {len(ids) - most} more" if len(ids) > most else "")

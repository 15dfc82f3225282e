"""Failover timing profiles: how fast Patroni gives up on a silent primary.

Failover takes about ttl + 2 s (Patroni's fixed probe of the old primary) + ~1.2 s (HAProxy
`rise 2` at `inter 1s`); DESIGN §2 has the lab figures behind these numbers.
"""

from dataclasses import dataclass

# Patroni 3.2.0 and later refuse a ttl below 20 s, and we ship Patroni 4.1.x (DESIGN §2).
MIN_TTL = 20


@dataclass(frozen=True)
class Timing:
    """Patroni's DCS timings, in seconds.

    `primary_start_timeout`: how long a crashed primary may try to restart in place before a
    standby takes over; 0 fails over at once (faster, but in async mode the last transactions
    the standby had not received are lost instead of recovered by the restart).
    """

    ttl: int
    loop_wait: int
    retry_timeout: int
    primary_start_timeout: int


PROFILES: dict[str, Timing] = {
    # The floor Patroni allows, checked every second, no restart in place.
    "fast": Timing(ttl=20, loop_wait=1, retry_timeout=4, primary_start_timeout=0),
    # Measured on Patroni 4.1.5: 22.4 to 23.9 s from power-off to the first write, 0 rows lost.
    "balanced": Timing(ttl=20, loop_wait=2, retry_timeout=4, primary_start_timeout=5),
    # Close to Patroni's defaults: rides out longer network blips and busy hosts.
    "safe": Timing(ttl=30, loop_wait=10, retry_timeout=10, primary_start_timeout=10),
    # Patroni's own defaults, offered so a failover can be measured against them (bench/).
    "defaults": Timing(ttl=30, loop_wait=10, retry_timeout=10, primary_start_timeout=300),
}


def validate_timing(timing: Timing) -> None:
    """Raise ValueError unless Patroni would accept `timing` and keep its lease safely.

    The lease rule is Patroni's own: a loop plus two DCS retries must fit in the ttl, otherwise
    a primary can lose its lease while it is still retrying and a standby promotes beside it.
    """
    if timing.ttl < MIN_TTL:
        raise ValueError(f"ttl {timing.ttl} s is below {MIN_TTL} s, which Patroni ≥ 3.2 refuses.")
    if timing.loop_wait < 1:
        raise ValueError(f"loop_wait {timing.loop_wait} s must be at least 1 s.")
    if timing.retry_timeout < 1:
        raise ValueError(f"retry_timeout {timing.retry_timeout} s must be at least 1 s.")
    if timing.primary_start_timeout < 0:
        raise ValueError(f"primary_start_timeout {timing.primary_start_timeout} s is negative.")
    if timing.loop_wait + 2 * timing.retry_timeout > timing.ttl:
        raise ValueError(
            f"loop_wait + 2 * retry_timeout <= ttl does not hold: {timing.loop_wait} + 2 * "
            f"{timing.retry_timeout} = {timing.loop_wait + 2 * timing.retry_timeout} > "
            f"ttl {timing.ttl}."
        )


def timing_for(name: str) -> Timing:
    """The validated timing of the profile called `name`; ValueError for an unknown name."""
    try:
        timing = PROFILES[name]
    except KeyError:
        known = ", ".join(sorted(PROFILES))
        raise ValueError(f"Unknown failover profile {name!r}; choose one of {known}.") from None
    validate_timing(timing)
    return timing

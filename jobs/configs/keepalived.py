"""keepalived on each of two proxies: VRRP moves the cluster's floating address to the other
proxy when the holder dies or its HAProxy stops answering.

- Both instances start as BACKUP with `nopreempt` and different priorities (the witness
  higher): the first to come up takes the address and keeps it; a proxy that returns does not
  take it back, so the address moves once per fault, not twice.
- VRRP version 3 with a half-second advertisement: the backup takes over about 1.5 s after the
  holder's last advertisement (3 intervals plus skew). VRRPv3 has no authentication; instead
  the adverts go unicast between the two proxies only, keepalived drops any from another source
  (`check_unicast_src`) and the host firewall drops IP protocol 112 from anyone but the peer.
- With one proxy left (its second removed, jobs/playbooks/proxies.py) the one instance holds the
  address alone: no peer, so no unicast lines. keepalived then sends its adverts by multicast
  (224.0.0.18, the cluster's router id), which no host of the cluster answers; it stays master.
- The check asks HAProxy itself over HTTP (a `monitor-uri` listener on 127.0.0.1:HEALTH_PORT,
  see jobs/configs/haproxy.py): a holder whose HAProxy died or hangs goes to FAULT and lets go.
"""

import ipaddress

from jobs.configs.spec import HEALTH_PORT, PROXY, ClusterSpec, NodeSpec, header

CONFIG_DIR = "/etc/hacenter"
# Priorities: the witness (first proxy) is preferred at the very first election only.
PRIORITIES = (150, 100)
ADVERT_INTERVAL = "0.5"


def keepalived_config_path(spec: ClusterSpec) -> str:
    return f"{CONFIG_DIR}/keepalived-{spec.name}.conf"


def check_script_path(spec: ClusterSpec) -> str:
    return f"{CONFIG_DIR}/keepalived-check-{spec.name}.sh"


def check_script(spec: ClusterSpec) -> str:
    """bash's /dev/tcp, so the check needs no curl: one GET to HAProxy's monitor-uri, which
    answers 200 itself (no backend involved, no connection to PostgreSQL)."""
    return (
        "#!/bin/bash\n"
        f"{header(spec)}\n"
        "# keepalived's check: does the local HAProxy answer HTTP? Exit 0 when it does.\n"
        f"exec 3<>/dev/tcp/127.0.0.1/{HEALTH_PORT} || exit 1\n"
        "printf 'GET / HTTP/1.0\\r\\n\\r\\n' >&3\n"
        "IFS= read -r -t 2 line <&3 || exit 1\n"
        'case "$line" in *" 200 "*) exit 0 ;; esac\n'
        "exit 1\n"
    )


def keepalived_config(spec: ClusterSpec, node: NodeSpec, interface: str) -> str:
    """keepalived.conf for `node` (one of the two proxies, or the only one left), whose address
    sits on `interface` (read on the server by the setup step)."""
    if not spec.virtual_ip:
        raise ValueError(f"Cluster {spec.name} has no floating address.")
    if node.kind != PROXY or node not in spec.proxies:
        raise ValueError(f"{node.name} is not one of {spec.name}'s proxies.")
    if not interface.replace("-", "").replace("_", "").replace(".", "").isalnum():
        raise ValueError(f"Interface name {interface!r} has unexpected characters.")
    vip = ipaddress.ip_interface(spec.virtual_ip)
    index = spec.proxies.index(node)
    peers = [p for p in spec.proxies if p != node]
    unicast = (
        [
            f"    unicast_src_ip {node.address}",
            "    unicast_peer {",
            *[f"        {p.address}" for p in peers],
            "    }",
            "    check_unicast_src",
        ]
        if peers
        else []
    )
    instance = f"hacenter_{spec.name.replace('-', '_')}"
    return "\n".join(
        [
            header(spec),
            "global_defs {",
            f"    router_id hacenter-{spec.name}-{node.name}",
            # The check script runs as root, and keepalived refuses it unless only root can
            # change it (the step writes it 0755 root).
            "    script_user root",
            "    enable_script_security",
            "}",
            "",
            "vrrp_script hacenter_haproxy {",
            f'    script "{check_script_path(spec)}"',
            "    interval 1",
            "    timeout 2",
            # Two failed checks (about 2 s) before the holder lets go; one success to return.
            "    fall 2",
            "    rise 1",
            "}",
            "",
            f"vrrp_instance {instance} {{",
            "    state BACKUP",
            "    nopreempt",
            "    version 3",
            f"    interface {interface}",
            f"    virtual_router_id {spec.vrrp_router_id}",
            f"    priority {PRIORITIES[index]}",
            f"    advert_int {ADVERT_INTERVAL}",
            *unicast,
            "    virtual_ipaddress {",
            f"        {vip.with_prefixlen} dev {interface}",
            "    }",
            "    track_script {",
            "        hacenter_haproxy",
            "    }",
            "}",
            "",
        ]
    )

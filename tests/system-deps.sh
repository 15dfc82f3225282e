#!/usr/bin/env bash
# Installs the Debian packages the tests need, when missing. Services these packages would
# start on the machine itself are not started (policy-rc.d): the lab runs its own per host.
set -euo pipefail
packages=(openssh-server sudo haproxy keepalived etcd-server etcd-client patroni chromium iproute2 procps
          util-linux postgresql-15 iptables  # iptables: the chaos suite cuts the console off
          nftables  # nft: the host firewall setup loads on every lab host (and its unit tests)
          # the systemd lab (tests/lab/systemd_lab.py): containers, their image, its apt proxy
          # (which the lab runs itself: the machine's apt-cacher-ng service must not start)
          systemd-container mmdebstrap zstd apt-cacher-ng
          pgbackrest  # pgbackrest: its own parser checks the config files HA Center writes
          # the netns lab's hosts share this machine's packages: fence_redfish for the fence
          # device tests (the product installs it on a customer's witness through setup)
          fence-agents)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "missing packages (${missing[*]}); run as root to install them" >&2; exit 1
fi
echo "installing: ${missing[*]}"
policy=/usr/sbin/policy-rc.d
had_policy=0; [ -e "$policy" ] && had_policy=1
[ $had_policy -eq 1 ] || { printf '#!/bin/sh\nexit 101\n' > "$policy"; chmod +x "$policy"; }
trap '[ $had_policy -eq 1 ] || rm -f "$policy"' EXIT
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

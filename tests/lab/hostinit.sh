#!/bin/sh
# PID 1 of a lab host, run by `unshare --pid --mount-proc ...` inside the host's network namespace.
# Usage: hostinit.sh NAME HOSTDIR
# Gives the host its hostname, private /run and /dev/shm, and its own copies of the server paths
# listed in HOSTDIR/mounts ("source target" per line), then becomes sshd so that killing this
# process (PID 1 of the PID namespace) powers the whole host off.
set -eu
name=$1
hostdir=$2

hostname "$name"
# -n everywhere: nothing may be written to the machine's /run/mount (utab) for host mounts.
mount -n -t tmpfs -o mode=0755,nosuid,nodev tmpfs /run
# POSIX shared memory (PostgreSQL's dynamic shm) is files in /dev/shm, not IPC-namespaced:
# without a private one, hosts share segments and a powered-off host leaves files behind.
mount -n -t tmpfs -o mode=1777,nosuid,nodev tmpfs /dev/shm
# What systemd-tmpfiles makes at boot on a server: /run/postgresql is postgresql-common's.
# Nothing of the product's own (/run/haproxy, /run/hacenter): its daemons must make those.
mkdir -p /run/sshd /run/postgresql /run/lock /run/sudo /run/user
chmod 0755 /run/sshd
chmod 1777 /run/lock
chown postgres:postgres /run/postgresql
chmod 2775 /run/postgresql

# /etc, /opt and /var/log: the machine's, with this host's changes on top (hostfs.OVERLAY_DIRS).
for tree in etc opt var/log; do
	mount -n -t overlay overlay \
		-o "lowerdir=/$tree,upperdir=$hostdir/upper/$tree,workdir=$hostdir/work/$tree" "/$tree"
done

while read -r src dst; do
	[ -n "$src" ] || continue
	mount -n --bind "$src" "$dst"
done <"$hostdir/mounts"

cd /
exec /usr/sbin/sshd -D -e -f "$hostdir/ssh/sshd_config"

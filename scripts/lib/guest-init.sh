#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# /init of the test guest's initramfs, run by busybox as PID 1. It is
# copied into build/guest/KREL/initramfs.cpio by scripts/run-in-guest.sh.
#
# Loads the 9p and virtio modules and mounts the host's root file system
# read-only (9p tag "hostroot"), with tmpfs on /tmp and /run. The run's
# writable output folder (9p tag "guestout") is mounted at the same path
# as on the host. Then the second stage, scripts/lib/guest-run.sh, runs
# chrooted into the host's root, and the guest powers off.
#
# Parameters come from the kernel command line, which the kernel passes
# to init as environment variables:
#   guest_probe=1       power off at once (the KVM probe boot)
#   guest_out=DIR       the output folder
#   guest_stage2=FILE   the second stage script, a path in the host's root
#   guest_control=FILE  its control file, a path in the host's root

export PATH=/bin

/bin/mount -t devtmpfs devtmpfs /dev
exec </dev/console >/dev/console 2>&1

# stop_guest ends the run. PID 1 must never exit: that would panic.
stop_guest() {
	sync
	poweroff -f
	sleep 60
}

fail() {
	echo "guest-init: $*"
	stop_guest
}

mount -t proc proc /proc
mount -t sysfs sysfs /sys

# modules.order lists the modules for the 9p file system in the order
# that `modprobe --show-depends` printed them, dependencies first.
while read -r module; do
	insmod "/lib/modules/$module" || fail "insmod $module failed"
done </modules.order

if [ "${guest_probe:-}" = 1 ]; then
	echo "guest-probe-ok"
	stop_guest
fi

[ -n "${guest_out:-}" ] && [ -n "${guest_stage2:-}" ] &&
	[ -n "${guest_control:-}" ] ||
	fail "guest_out, guest_stage2 or guest_control missing from the kernel command line"

# The root is read-only, so cache=loose is safe and makes reading the
# host's programs and libraries much faster. msize is the largest 9p
# message; larger messages mean fewer round trips.
mount -t 9p -o trans=virtio,version=9p2000.L,ro,cache=loose,msize=512000 \
	hostroot /newroot || fail "mounting the host root over 9p failed"

mount -t proc proc /newroot/proc &&
	mount -t sysfs sysfs /newroot/sys &&
	mount -t devtmpfs devtmpfs /newroot/dev &&
	mkdir -p /newroot/dev/pts /newroot/dev/shm &&
	mount -t devpts devpts /newroot/dev/pts &&
	mount -t tmpfs -o mode=1777 tmpfs /newroot/dev/shm &&
	mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp &&
	mount -t tmpfs -o mode=0755 tmpfs /newroot/run ||
	fail "mounting proc, sysfs, devtmpfs or tmpfs in the new root failed"
# debugfs contains kmemleak's control file on the debug kernel.
mount -t debugfs debugfs /newroot/sys/kernel/debug ||
	fail "mounting debugfs in the new root failed"

# No cache on the output share: files written in the guest must be on
# the host when the guest powers off. An output folder under /tmp or /run
# is hidden by the tmpfs mounted there, so its mount point is made first.
mkdir -p "/newroot$guest_out" 2>/dev/null
mount -t 9p -o trans=virtio,version=9p2000.L,rw,msize=512000 \
	guestout "/newroot$guest_out" ||
	fail "mounting the output folder $guest_out over 9p failed"

chroot /newroot /bin/bash "$guest_stage2" "$guest_control" ||
	echo "guest-init: the second stage exited with status $?"

umount "/newroot$guest_out"
stop_guest

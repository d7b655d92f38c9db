#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Second stage of a test guest, run by scripts/lib/guest-init.sh with
# Debian's bash, chrooted into the host's root file system (read-only).
#
# Usage: guest-run.sh CONTROL
#   CONTROL is written by scripts/run-in-guest.sh and sets:
#     guest_out       output folder, writable and shared with the host
#     guest_repo      the repository; the command runs in it
#     guest_module    PATH of a .ko to insmod, "debian" or "none"
#     guest_module_origin  out-of-tree, or in-tree for the debug kernel's
#                     in-tree build of our driver
#     guest_series, guest_krel  the kernel series and release
#     guest_timeout   seconds the whole guest run may take
#     guest_hung_task_secs      hung-task report threshold in seconds
#     guest_env       array of NAME=VALUE for the command's environment
#     guest_cmd       array: the command and its arguments
#
# Loads and checks the requested module, runs the command as root with
# its output on the console, then saves the kernel log to
# $guest_out/dmesg.txt and the result to $guest_out/.guest-status, one
# line: "exit N", "timeout" or "error REASON".

set -u
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

# shellcheck source=/dev/null
. "$1"
status_file=$guest_out/.guest-status
# Seconds kept back at the end of the run for saving the kernel log and
# powering off.
shutdown_margin=5

report() {
	printf '%s\n' "$*" >"$status_file"
	sync
}

error() {
	echo "guest-run: $*"
	dmesg >"$guest_out/dmesg.txt" 2>&1
	report "error $*"
	exit 1
}

# load_module loads the requested module and checks that the kernel runs
# that one and not another module of the same name.
load_module() {
	local sysmod=/sys/module/tpm_vtpm_proxy taint srcversion expected

	case "$guest_module" in
	none)
		return 0
		;;
	debian)
		modprobe tpm_vtpm_proxy ||
			error "modprobe tpm_vtpm_proxy failed"
		taint=$(cat "$sysmod/taint" 2>/dev/null) ||
			error "$sysmod/taint not found after modprobe"
		case "$taint" in
		*O*) error "module taint is '$taint': an out-of-tree module was loaded, not Debian's" ;;
		esac
		;;
	*)
		[ -d "$sysmod" ] &&
			error "tpm_vtpm_proxy is already loaded before insmod"
		insmod "$guest_module" ||
			error "insmod $guest_module failed"
		taint=$(cat "$sysmod/taint" 2>/dev/null) ||
			error "$sysmod/taint not found after insmod"
		case "$guest_module_origin:$taint" in
		out-of-tree:*O*) ;;
		out-of-tree:*) error "module taint is '$taint', without O: the loaded module is not the out-of-tree one" ;;
		in-tree:*O*) error "module taint is '$taint': the in-tree build was requested, an out-of-tree module was loaded" ;;
		esac
		srcversion=$(cat "$sysmod/srcversion" 2>/dev/null)
		expected=$(modinfo -F srcversion "$guest_module")
		[ -n "$expected" ] ||
			error "$guest_module has no srcversion; build it with CONFIG_MODULE_SRCVERSION_ALL=y, as scripts/build-module.sh does"
		[ "$srcversion" = "$expected" ] ||
			error "loaded srcversion '$srcversion' differs from '$expected' of $guest_module"
		;;
	esac
	[ -c /dev/vtpmx ] || error "/dev/vtpmx did not appear after loading the module"
	echo "guest-run: loaded tpm_vtpm_proxy ($guest_module), taint '$taint'"
}

# run_command runs the command in its own session, so that a timeout can
# kill it with all its children, and sets result to its outcome.
run_command() {
	local uptime limit pid watchdog rc

	uptime=$(cut -d. -f1 /proc/uptime)
	limit=$((guest_timeout - uptime - shutdown_margin))
	[ "$limit" -gt 0 ] || limit=1

	cd "$guest_repo" || error "cd $guest_repo failed"
	env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		HOME=/root TERM=dumb LANG=C.UTF-8 \
		GUEST_OUT="$guest_out" GUEST_SERIES="$guest_series" \
		GUEST_KERNEL_RELEASE="$guest_krel" VTPM_MODULE="$guest_module" \
		"${guest_env[@]}" setsid "${guest_cmd[@]}" </dev/null &
	pid=$!

	(
		sleep "$limit"
		touch /run/guest-timed-out
		# List the tasks stuck in uninterruptible sleep before they
		# are killed, so that the kernel log shows where they hang.
		echo w >/proc/sysrq-trigger
		kill -TERM -- "-$pid" 2>/dev/null
		sleep 2
		kill -KILL -- "-$pid" 2>/dev/null
	) &
	watchdog=$!

	wait "$pid"
	rc=$?
	kill "$watchdog" 2>/dev/null
	wait "$watchdog" 2>/dev/null

	if [ -e /run/guest-timed-out ]; then
		echo "guest-run: the command did not finish within $limit s and was killed"
		result=timeout
	else
		result="exit $rc"
	fi
}

load_module

# The kernel reports a task that sleeps uninterruptibly for longer than
# this many seconds as hung. Its default of 120 s is longer than most
# runs, so a task stuck inside the driver would go unnoticed.
if [ -w /proc/sys/kernel/hung_task_timeout_secs ]; then
	echo "$guest_hung_task_secs" >/proc/sys/kernel/hung_task_timeout_secs
fi

run_command
dmesg >"$guest_out/dmesg.txt" 2>&1
report "$result"

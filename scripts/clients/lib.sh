# SPDX-License-Identifier: GPL-2.0
#
# Helpers for the client checks that run inside a test guest: the
# scripts/clients/*.sh scripts, which scripts/clients-lane.sh and
# scripts/dkms-lane.sh start through scripts/run-in-guest.sh. Source it;
# do not run it.
#
# Each check prints one line, "ok - LABEL: BEHAVIOUR" or
# "not ok - LABEL: BEHAVIOUR" followed by "#" lines that say why, and
# appends it to $GUEST_OUT/results.txt, which the lane counts. A check
# that this environment cannot run prints
# "skip - LABEL: BEHAVIOUR: REASON". LABEL is $CLIENTS_LABEL, else the
# kernel series.

clients_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
# shellcheck source=../lib/guest-swtpm.sh
. "$clients_top/scripts/lib/guest-swtpm.sh"

label=${CLIENTS_LABEL:-${GUEST_SERIES:-guest}}
results=${GUEST_OUT:?GUEST_OUT is not set: run this script through scripts/run-in-guest.sh}/results.txt
work=$(mktemp -d /tmp/clients.XXXXXX)
# Seconds that a single tpm2-tools command may take before its check
# fails. Creating an RSA 2048 primary key takes about 2 s under TCG.
tool_timeout=60

report() {
	printf '%s\n' "$*" | tee -a "$results"
}

ok() {
	report "ok - $label: $*"
}

# not_ok BEHAVIOUR [DETAIL]... reports a failed check with one "#" line
# per DETAIL.
not_ok() {
	local line

	report "not ok - $label: $1"
	shift
	for line in "$@"; do
		report "#   $line"
	done
}

# not_ok_file BEHAVIOUR FILE reports a failed check with the last lines of
# FILE as detail.
not_ok_file() {
	local details=()

	# The guest's /dev has no /dev/fd, so no process substitution here.
	[ -s "$2" ] && mapfile -t details <<<"$(tail -n 20 "$2")"
	not_ok "$1" "${details[@]}"
}

skip() {
	report "skip - $label: $1: $2"
}

# note TEXT adds a "#" line to the results, for measured figures.
note() {
	report "#   $*"
}

# expect BEHAVIOUR COMMAND [ARG]... runs COMMAND and reports BEHAVIOUR
# as passed when it succeeds, else as failed with its output.
expect() {
	local behaviour=$1 log=$work/expect.log

	shift
	if "$@" >"$log" 2>&1; then
		ok "$behaviour"
	else
		not_ok_file "$behaviour" "$log"
		return 1
	fi
}

# tpm2 NODE TOOL [ARG]... runs the tpm2-tools program tpm2_TOOL against
# the device node NODE.
tpm2() {
	local node=$1 tool=$2

	shift 2
	TPM2TOOLS_TCTI=device:$node timeout "$tool_timeout" "tpm2_$tool" "$@"
}

# now_ms prints the time in milliseconds.
now_ms() {
	echo $((${EPOCHREALTIME/./} / 1000))
}

# Under TCG every fork and exec costs the guest milliseconds of CPU, which
# the emulators need during the TPM core's timed start-up commands, so the
# waits below use only shell builtins. No process writes to the FIFO
# nap_fd, so reading it with a timeout sleeps without a sleep process.
mkfifo "$work/nap"
exec {nap_fd}<>"$work/nap"

# nap SECONDS sleeps for SECONDS, which may be a fraction.
nap() {
	read -r -t "$1" -u "$nap_fd" _
	return 0
}

# wait_path PATH present|gone waits up to SWTPM_WAIT_SECS until PATH
# exists or no longer exists.
wait_path() {
	local path=$1 want=$2 tries=$((SWTPM_WAIT_SECS * 10))

	while [ "$tries" -gt 0 ]; do
		if [ -e "$path" ]; then
			[ "$want" = present ] && return 0
		else
			[ "$want" = gone ] && return 0
		fi
		nap 0.1
		tries=$((tries - 1))
	done
	return 1
}

# The emulators below are named instances. Instance NAME keeps its files
# in $work/NAME: state/ (the TPM state, kept across restarts), ctrl (the
# control socket for swtpm_ioctl), out (swtpm's output), pid and num
# (N of /dev/tpmN).

# vtpm_start NAME VERSION [SWTPM_OPTION]... starts swtpm in vTPM proxy
# mode for a TPM 2.0 (VERSION 2) or TPM 1.2 (VERSION 1.2) and waits until
# the kernel has registered the chip and created its nodes. Fails with a
# message on stderr.
#
# The TPM core gives the start-up TPM2_SelfTest 2 s, and swtpm needs
# about 1 s of CPU for it under TCG, so on a busy host a registration can
# time out: the device is torn down and swtpm exits. Then vtpm_start
# starts swtpm once more and notes it in the results.
vtpm_start() {
	vtpm_spawn "$@" && vtpm_ready "$1" && return 0
	pid_alive "$(vtpm_pid "$1")" && return 1

	note "swtpm $1 exited before its device registered; starting it once more. Kernel log: $(dmesg | grep -i tpm | tail -n 1)"
	vtpm_spawn "$@" && vtpm_ready "$1"
}

# vtpm_spawn NAME VERSION [SWTPM_OPTION]... starts swtpm like vtpm_start
# without waiting for its device. swtpm is a child of the calling shell.
vtpm_spawn() {
	local name=$1 version=$2 dir=$work/$1 args=()

	shift 2
	case "$version" in
	2) args=(--tpm2 --flags startup-clear) ;;
	1.2) ;;
	*)
		echo "vtpm_spawn: invalid TPM version '$version'" >&2
		return 1
		;;
	esac

	mkdir -p "$dir/state"
	rm -f "$dir/num" "$dir/ctrl"
	echo "$version" >"$dir/version"
	swtpm chardev --vtpm-proxy "${args[@]}" --tpmstate dir="$dir/state" \
		--ctrl type=unixio,path="$dir/ctrl" "$@" >"$dir/out" 2>&1 &
	echo $! >"$dir/pid"
}

# vtpm_ready NAME waits until the device of swtpm NAME is registered and
# its nodes exist.
vtpm_ready() {
	local name=$1 dir=$work/$1 pid dev num tries line

	pid=$(vtpm_pid "$name")
	# swtpm prints "New TPM device: /dev/tpmN (major/minor = M/N)" once
	# the ioctl on /dev/vtpmx has returned.
	tries=$((SWTPM_WAIT_SECS * 10))
	dev=
	while [ "$tries" -gt 0 ] && pid_alive "$pid"; do
		while read -r line; do
			[[ "$line" =~ ^New\ TPM\ device:\ (/dev/tpm[0-9]+)\  ]] &&
				dev=${BASH_REMATCH[1]}
		done <"$dir/out"
		[ -z "$dev" ] || break
		nap 0.1
		tries=$((tries - 1))
	done
	if [ -z "$dev" ]; then
		echo "swtpm $name did not report a new TPM device; its output:" >&2
		cat "$dir/out" >&2
		return 1
	fi
	echo "${dev#/dev/tpm}" >"$dir/num"

	# The ioctl returns before the chip is registered: the nodes appear
	# once the kernel's start-up commands have been answered. A failed
	# registration tears the device down and swtpm exits.
	num=${dev#/dev/tpm}
	tries=$((SWTPM_WAIT_SECS * 10))
	while [ "$tries" -gt 0 ] && pid_alive "$pid"; do
		if [ -e "$dev" ] && { [ "$(cat "$dir/version")" != 2 ] ||
			[ -e "/dev/tpmrm$num" ]; }; then
			return 0
		fi
		nap 0.1
		tries=$((tries - 1))
	done
	if pid_alive "$pid"; then
		echo "$dev of swtpm $name did not appear within ${SWTPM_WAIT_SECS}s; swtpm output:" >&2
	else
		echo "swtpm $name exited before $dev appeared; its output:" >&2
	fi
	cat "$dir/out" >&2
	return 1
}

# pid_alive PID succeeds while process PID runs. A zombie does not count:
# the guest's init does not reap orphans.
pid_alive() {
	local stat state

	read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
	# The state follows the command name, which is in parentheses.
	state=${stat##*) }
	state=${state%% *}
	[ "$state" != Z ] && [ "$state" != X ]
}

vtpm_num() {
	cat "$work/$1/num"
}

vtpm_pid() {
	cat "$work/$1/pid"
}

vtpm_ctrl() {
	echo "$work/$1/ctrl"
}

# vtpm_wait_exit NAME waits up to SWTPM_WAIT_SECS for swtpm NAME to exit
# and sets vtpm_status to its exit status, or to "unknown" when swtpm is
# not a child of this shell.
vtpm_wait_exit() {
	local pid rc tries=$((SWTPM_WAIT_SECS * 10))

	vtpm_status=
	pid=$(vtpm_pid "$1")
	while [ "$tries" -gt 0 ] && pid_alive "$pid"; do
		nap 0.1
		tries=$((tries - 1))
	done
	pid_alive "$pid" && return 1
	vtpm_status=unknown
	# wait returns 127 for a process that is not our child.
	wait "$pid" 2>/dev/null
	rc=$?
	[ "$rc" = 127 ] || vtpm_status=$rc
	return 0
}

# vtpm_nodes_gone NAME waits until /dev/tpmN and /dev/tpmrmN of swtpm
# NAME no longer exist.
vtpm_nodes_gone() {
	local num

	num=$(vtpm_num "$1")
	wait_path "/dev/tpm$num" gone && wait_path "/dev/tpmrm$num" gone
}

# vtpm_stop NAME stops swtpm NAME through its control socket, waits for
# it to exit and for its nodes to go away.
vtpm_stop() {
	swtpm_ioctl --unix "$(vtpm_ctrl "$1")" -s >/dev/null &&
		vtpm_wait_exit "$1" && vtpm_nodes_gone "$1"
}

# vtpm_kill_all kills every swtpm that is still running, for the exit
# trap: a check that failed half way must not leave emulators behind.
vtpm_kill_all() {
	local pidfile pid

	for pidfile in "$work"/*/pid; do
		[ -f "$pidfile" ] || continue
		pid=$(cat "$pidfile")
		[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = swtpm ] || continue
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	return 0
}

# tpm_nodes_left prints the TPM device nodes and sysfs entries that exist.
tpm_nodes_left() {
	local path

	for path in /dev/tpm* /sys/class/tpm/* /sys/class/tpmrm/*; do
		[ -e "$path" ] && echo "$path"
	done
	return 0
}

trap vtpm_kill_all EXIT

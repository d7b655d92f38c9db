#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# What users do with swtpm and tpm2-tools on a vTPM proxy device, as root
# inside a test guest with tpm_vtpm_proxy loaded and no other TPM.
#
# Usage: swtpm-workflows.sh [GROUP]...
#   GROUP is one of the groups below; without one, all run in this order:
#     tpm2        a TPM 2.0 device serves tpm2_getrandom and tpm2_pcrread
#     tpm12       a TPM 1.2 device registers and answers a raw command
#     restart     a persistent key survives an emulator restart
#     ioctl-stop  swtpm_ioctl -s removes both device nodes
#     many        20 emulators at once, each behind its own device
#     sigkill     an emulator killed during a command fails the client
set -uo pipefail

. "$(dirname "$0")/lib.sh"

# Seconds within which a client must fail once its emulator is killed.
# The driver fails a pending command at once when the server fd closes;
# the bound is loose on purpose because it only tells failing from
# hanging, on a loaded TCG guest.
kill_fail_secs=5
# Emulators that run at the same time in the "many" group.
many_count=20
persistent_handle=0x81000001

# check_tpm2 NAME checks what tpm2-tools do with the TPM 2.0 device of
# swtpm NAME.
check_tpm2() {
	local num bytes value node

	num=$(vtpm_num "$1")
	value=$(cat "/sys/class/tpm/tpm$num/tpm_version_major" 2>&1)
	if [ "$value" = 2 ]; then
		ok "TPM 2.0 device reports tpm_version_major 2"
	else
		not_ok "TPM 2.0 device reports tpm_version_major 2" "read '$value'"
	fi

	for node in "/dev/tpm$num" "/dev/tpmrm$num"; do
		if bytes=$(tpm2 "$node" getrandom --hex 16 2>"$work/err") &&
			[[ "$bytes" =~ ^[0-9a-f]{32}$ ]]; then
			ok "tpm2_getrandom through ${node%%[0-9]*}N returns 16 bytes"
		else
			not_ok "tpm2_getrandom through ${node%%[0-9]*}N returns 16 bytes" \
				"output '$bytes'" "$(cat "$work/err")"
		fi
	done

	# PCR 0 of a TPM that nothing has measured into is all zero.
	value=$(tpm2 "/dev/tpmrm$num" pcrread sha256:0 2>"$work/err")
	if [[ "$value" =~ 0\ *:\ 0x0{64} ]]; then
		ok "tpm2_pcrread returns the reset value of sha256 PCR 0"
	else
		not_ok "tpm2_pcrread returns the reset value of sha256 PCR 0" \
			"output '$value'" "$(cat "$work/err")"
	fi
}

group_tpm2() {
	if ! vtpm_start tpm2 2 2>"$work/start.log"; then
		not_ok_file "swtpm TPM 2.0 registers /dev/tpmN and /dev/tpmrmN" \
			"$work/start.log"
		return
	fi
	ok "swtpm TPM 2.0 registers /dev/tpmN and /dev/tpmrmN"
	check_tpm2 tpm2
	expect "swtpm TPM 2.0 stops cleanly" vtpm_stop tpm2
}

group_tpm12() {
	local num sysfs bytes pcrs value

	if ! vtpm_start tpm12 1.2 2>"$work/start.log"; then
		not_ok_file "swtpm TPM 1.2 registers /dev/tpmN" "$work/start.log"
		return
	fi
	num=$(vtpm_num tpm12)
	sysfs=/sys/class/tpm/tpm$num
	ok "swtpm TPM 1.2 registers /dev/tpmN"

	if [ -e "/dev/tpmrm$num" ]; then
		not_ok "TPM 1.2 device has no /dev/tpmrmN" "/dev/tpmrm$num exists"
	else
		ok "TPM 1.2 device has no /dev/tpmrmN"
	fi
	value=$(cat "$sysfs/tpm_version_major" 2>&1)
	if [ "$value" = 1 ]; then
		ok "TPM 1.2 device reports tpm_version_major 1"
	else
		not_ok "TPM 1.2 device reports tpm_version_major 1" "read '$value'"
	fi

	# The TPM core reads every PCR through the chip for this file.
	pcrs=$(grep -c '^PCR-[0-9][0-9]: [0-9A-F ]*$' "$sysfs/pcrs" 2>/dev/null)
	if [ "$pcrs" = 24 ]; then
		ok "TPM 1.2 sysfs pcrs lists 24 PCRs"
	else
		not_ok "TPM 1.2 sysfs pcrs lists 24 PCRs" "found ${pcrs:-no} PCR lines" \
			"$(head -n 3 "$sysfs/pcrs" 2>&1)"
	fi
	if [ -s "$sysfs/durations" ] && [ -s "$sysfs/timeouts" ]; then
		ok "TPM 1.2 sysfs shows durations and timeouts"
	else
		not_ok "TPM 1.2 sysfs shows durations and timeouts" \
			"$(ls "$sysfs" 2>&1 | tr '\n' ' ')"
	fi

	if bytes=$(tpm12_getrandom "/dev/tpm$num" 8 2>"$work/err"); then
		ok "raw TPM_GetRandom through /dev/tpmN returns 8 bytes"
	else
		not_ok "raw TPM_GetRandom through /dev/tpmN returns 8 bytes" \
			"$(cat "$work/err")"
	fi
	expect "swtpm TPM 1.2 stops cleanly" vtpm_stop tpm12
}

group_restart() {
	local num old new handles

	if ! vtpm_start restart 2 2>"$work/start.log"; then
		not_ok_file "persistent key survives an emulator restart" \
			"$work/start.log"
		return
	fi
	num=$(vtpm_num restart)
	if ! tpm2 "/dev/tpmrm$num" createprimary -C o -G ecc256 \
		-c "$work/primary.ctx" >"$work/err" 2>&1 ||
		! tpm2 "/dev/tpmrm$num" evictcontrol -C o -c "$work/primary.ctx" \
			"$persistent_handle" >>"$work/err" 2>&1; then
		not_ok_file "persistent key survives an emulator restart" "$work/err"
		vtpm_stop restart
		return
	fi
	old=$(tpm2 "/dev/tpmrm$num" readpublic -c "$persistent_handle" 2>&1 |
		grep '^name:')

	if ! vtpm_stop restart; then
		not_ok "persistent key survives an emulator restart" \
			"swtpm did not stop or /dev/tpm$num did not go away"
		return
	fi
	if ! vtpm_start restart 2 2>"$work/start.log"; then
		not_ok_file "restarted swtpm on the same state registers a device" \
			"$work/start.log"
		return
	fi
	ok "restarted swtpm on the same state registers a device"
	num=$(vtpm_num restart)

	handles=$(tpm2 "/dev/tpmrm$num" getcap handles-persistent 2>&1)
	new=$(tpm2 "/dev/tpmrm$num" readpublic -c "$persistent_handle" 2>&1 |
		grep '^name:')
	if grep -qi "$persistent_handle" <<<"$handles" && [ -n "$new" ] &&
		[ "$new" = "$old" ]; then
		ok "persistent key survives an emulator restart"
	else
		not_ok "persistent key survives an emulator restart" \
			"getcap handles-persistent: $handles" \
			"key name before '$old', after '$new'"
	fi
	expect "restarted swtpm stops cleanly" vtpm_stop restart
}

group_ioctl_stop() {
	local num

	if ! vtpm_start ctrl 2 2>"$work/start.log"; then
		not_ok_file "swtpm_ioctl -s removes /dev/tpmN and /dev/tpmrmN" \
			"$work/start.log"
		return
	fi
	num=$(vtpm_num ctrl)
	if ! swtpm_ioctl --unix "$(vtpm_ctrl ctrl)" -s >"$work/err" 2>&1; then
		not_ok_file "swtpm_ioctl -s removes /dev/tpmN and /dev/tpmrmN" \
			"$work/err"
		return
	fi
	if vtpm_nodes_gone ctrl; then
		ok "swtpm_ioctl -s removes /dev/tpmN and /dev/tpmrmN"
	else
		not_ok "swtpm_ioctl -s removes /dev/tpmN and /dev/tpmrmN" \
			"still there after ${SWTPM_WAIT_SECS}s:" $(tpm_nodes_left)
	fi
	if vtpm_wait_exit ctrl && [ "$vtpm_status" = 0 ]; then
		ok "swtpm exits with status 0 after swtpm_ioctl -s"
	else
		not_ok "swtpm exits with status 0 after swtpm_ioctl -s" \
			"exit status '${vtpm_status:-still running}'" \
			"$(cat "$work/ctrl/out")"
	fi
}

group_many() {
	local i name ready=() failed=() nums bytes left start

	# Each emulator starts once the previous device has registered. Under
	# TCG, 20 swtpm processes starting at the same moment keep the guest's
	# two CPUs so busy that the TPM core's 2 s limit for the start-up
	# TPM2_SelfTest runs out, with Debian's driver as with ours.
	start=$(now_ms)
	for i in $(seq "$many_count"); do
		if vtpm_start "many$i" 2 2>"$work/many$i.start"; then
			ready+=("many$i")
		else
			failed+=("many$i: $(tail -n 3 "$work/many$i.start" | tr '\n' ' ')")
		fi
	done
	note "starting $many_count emulators one after another took $(($(now_ms) - start)) ms"

	# The checks after this one use only the emulators whose device
	# registered; this one reports the others.
	nums=$(for name in "${ready[@]}"; do vtpm_num "$name"; done |
		sort -un | wc -l)
	if [ ${#failed[@]} -eq 0 ] && [ "$nums" = "$many_count" ]; then
		ok "$many_count emulators get $many_count distinct devices"
	else
		not_ok "$many_count emulators get $many_count distinct devices" \
			"$nums distinct device numbers" "${failed[@]}"
	fi

	start=$(now_ms)
	for name in "${ready[@]}"; do
		tpm2 "/dev/tpmrm$(vtpm_num "$name")" getrandom --hex 16 \
			>"$work/$name.random" 2>&1 &
	done
	wait_jobs_except_swtpm
	note "$many_count tpm2_getrandom in parallel took $(($(now_ms) - start)) ms"
	# tpm2_getrandom --hex prints no newline.
	bytes=0
	failed=()
	for name in "${ready[@]}"; do
		if grep -qxE '[0-9a-f]{32}' "$work/$name.random"; then
			bytes=$((bytes + 1))
		else
			failed+=("$name: $(head -c 200 "$work/$name.random")")
		fi
	done
	if [ "$bytes" = "$many_count" ]; then
		ok "$many_count devices answer tpm2_getrandom in parallel"
	else
		not_ok "$many_count devices answer tpm2_getrandom in parallel" \
			"$bytes of $many_count returned 16 bytes" "${failed[@]:0:5}"
	fi

	# SIGTERM stops swtpm as cleanly as swtpm_ioctl -s, which the
	# ioctl-stop group covers, without starting 20 more programs.
	start=$(now_ms)
	for name in "${ready[@]}"; do
		kill -TERM "$(vtpm_pid "$name")"
	done
	failed=()
	for name in "${ready[@]}"; do
		if ! vtpm_wait_exit "$name" || [ "$vtpm_status" != 0 ]; then
			failed+=("swtpm $name: exit status ${vtpm_status:-none, still running}")
		fi
	done
	wait_path /dev/tpm0 gone
	note "stopping $many_count emulators took $(($(now_ms) - start)) ms"
	left=$(tpm_nodes_left)
	if [ -z "$left" ] && [ ${#failed[@]} -eq 0 ]; then
		ok "stopping all $many_count emulators leaves no TPM device behind"
	else
		not_ok "stopping all $many_count emulators leaves no TPM device behind" \
			$left "${failed[@]}"
	fi
}

# wait_jobs_except_swtpm waits for the background jobs of this shell
# other than the emulators.
wait_jobs_except_swtpm() {
	local pid

	for pid in $(jobs -p); do
		[ "$(cat "/proc/$pid/comm" 2>/dev/null)" = swtpm ] && continue
		wait "$pid"
	done
}

# sigkill_check NAME CLIENT_PID CLIENT_LOG BEHAVIOUR CASE kills swtpm
# NAME with SIGKILL and reports BEHAVIOUR: the client fails within
# kill_fail_secs. Then checks that the device nodes go away; CASE tells
# that check apart from the other cases.
sigkill_check() {
	local name=$1 client=$2 log=$3 behaviour=$4 case=$5 start elapsed rc

	# EPOCHREALTIME is microseconds with a decimal point, read without a
	# fork. The loop's output goes nowhere because bash reports the
	# killed swtpm job there.
	start=${EPOCHREALTIME/./}
	kill -KILL "$(vtpm_pid "$name")"
	{
		while [ $((${EPOCHREALTIME/./} - start)) -lt $((kill_fail_secs * 1000000)) ] &&
			pid_alive "$client"; do
			nap 0.01
		done
	} 2>/dev/null
	elapsed=$(((${EPOCHREALTIME/./} - start) / 1000))
	if pid_alive "$client"; then
		not_ok "$behaviour" "the client still runs ${kill_fail_secs}s after SIGKILL"
		kill -KILL "$client" 2>/dev/null
		wait "$client" 2>/dev/null
	else
		wait "$client"
		rc=$?
		if grep -Eq 'errno 62|Failed to poll for response' "$log"; then
			not_ok "$behaviour" \
				"the client timed out instead of seeing swtpm die: $(cat "$log")"
		elif [ "$rc" != 0 ]; then
			ok "$behaviour"
			note "the client failed ${elapsed} ms after SIGKILL (bound ${kill_fail_secs} s), exit status $rc: $(grep -m 1 -i 'error' "$log")"
		else
			not_ok "$behaviour" "the client succeeded: $(cat "$log")"
		fi
	fi
	wait "$(vtpm_pid "$name")" 2>/dev/null

	if vtpm_nodes_gone "$name"; then
		ok "SIGKILL of swtpm removes /dev/tpmN and /dev/tpmrmN ($case)"
	else
		not_ok "SIGKILL of swtpm removes /dev/tpmN and /dev/tpmrmN ($case)" \
			$(tpm_nodes_left)
	fi
}

# in_device_call PID NODE succeeds while process PID waits for a TPM
# response on device node NODE: it sleeps in read() or write() on a file
# of NODE, or in poll() or ppoll() with a file of NODE open. tpm2-tss
# opens the device with O_NONBLOCK, so its write() returns at once and it
# waits in poll(). /proc/PID/syscall starts with the system call's number
# (x86-64: 0 read, 1 write, 7 poll, 271 ppoll) and its first argument.
in_device_call() {
	local pid=$1 node=$2 call arg fd

	read -r call arg _ 2>/dev/null <"/proc/$pid/syscall" || return 1
	case "$call" in
	0 | 1)
		[[ "/proc/$pid/fd/$((arg))" -ef "$node" ]]
		;;
	7 | 271)
		for fd in "/proc/$pid/fd/"*; do
			[[ "$fd" -ef "$node" ]] && return 0
		done
		return 1
		;;
	*)
		return 1
		;;
	esac
}

# The command is queued: swtpm is stopped with SIGSTOP before the client
# sends it, so swtpm never reads it. The client's first command is the
# TPM2_GetRandom with which tpm2-tss's device TCTI probes the device, and
# tpm2-tss 4.0 waits 1 s for its response. So swtpm must die within that
# second: the check polls every 10 ms, and sigkill_check rejects a
# failure by time-out.
sigkill_queued() {
	local behaviour="client of a killed emulator fails (command queued)"
	local num client tries

	if ! vtpm_start queued 2 2>"$work/start.log"; then
		not_ok_file "$behaviour" "$work/start.log"
		return
	fi
	num=$(vtpm_num queued)
	kill -STOP "$(vtpm_pid queued)"
	# Without the timeout wrapper of tpm2, so that $! is the client.
	TPM2TOOLS_TCTI=device:/dev/tpmrm$num tpm2_getrandom --hex 16 \
		>"$work/queued.log" 2>&1 &
	client=$!

	tries=$((tool_timeout * 100))
	while [ "$tries" -gt 0 ] && pid_alive "$client" &&
		! in_device_call "$client" "/dev/tpmrm$num"; do
		nap 0.01
		tries=$((tries - 1))
	done
	if ! in_device_call "$client" "/dev/tpmrm$num"; then
		not_ok "$behaviour" \
			"the client never waited in a call on /dev/tpmrm$num: $(cat "$work/queued.log")"
		kill -KILL "$client" "$(vtpm_pid queued)" 2>/dev/null
		wait "$client" "$(vtpm_pid queued)" 2>/dev/null
		return
	fi
	sigkill_check queued "$client" "$work/queued.log" "$behaviour" \
		"command queued"
}

# The command is being executed: swtpm has read a CreatePrimary for an
# RSA 2048 key, which takes it a second or more under TCG, and is stopped
# with SIGSTOP before it answers. Its log (level 20) shows each command
# it reads and each response it writes, in hex.
sigkill_executing() {
	local behaviour="client of a killed emulator fails (command executing)"
	local num client template log pid tries new

	# Each template makes a new key, so that a retry does not find the
	# answer cached.
	for template in rsa2048:null:aes128cfb rsa2048:null:aes256cfb \
		rsa2048:null:aes192cfb; do
		rm -rf "$work/executing"
		log=$work/executing.log
		rm -f "$log"
		if ! vtpm_start executing 2 --log "file=$log,level=20" \
			2>"$work/start.log"; then
			not_ok_file "$behaviour" "$work/start.log"
			return
		fi
		num=$(vtpm_num executing)
		pid=$(vtpm_pid executing)
		# Only the log lines after this one belong to CreatePrimary.
		new=$(($(wc -l <"$log") + 1))
		tpm2 "/dev/tpmrm$num" createprimary -C o -G "$template" \
			-c "$work/executing.ctx" >"$work/executing.out" 2>&1 &
		client=$!

		# A command starts with its tag, size and code:
		# TPM2_CC_CreatePrimary is 0x131, "80 0X 00 00 XX XX 00 00 01 31".
		tries=1000
		while [ "$tries" -gt 0 ] && pid_alive "$client"; do
			if tail -n "+$new" "$log" |
				grep -q '^ *80 0[12] 00 00 .. .. 00 00 01 31'; then
				kill -STOP "$pid"
				break
			fi
			nap 0.01
			tries=$((tries - 1))
		done
		nap 0.2
		if pid_alive "$client" &&
			! tail -n "+$new" "$log" | sed -n '/00 00 01 31/,$p' |
			grep -q 'SWTPM_IO_Write'; then
			sigkill_check executing "$client" "$work/executing.out" \
				"$behaviour" "command executing"
			return
		fi

		# swtpm answered before it was stopped: try a new key.
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		wait "$client" 2>/dev/null
		vtpm_nodes_gone executing
	done
	not_ok "$behaviour" \
		"swtpm answered CreatePrimary before it could be stopped, three times"
}

group_sigkill() {
	local num

	sigkill_queued
	sigkill_executing

	if ! vtpm_start after 2 2>"$work/start.log"; then
		not_ok_file "next device after a killed emulator works" \
			"$work/start.log"
		return
	fi
	num=$(vtpm_num after)
	expect "next device after a killed emulator works" \
		tpm2 "/dev/tpmrm$num" getrandom --hex 16
	vtpm_stop after
}

groups=("$@")
[ ${#groups[@]} -gt 0 ] || groups=(tpm2 tpm12 restart ioctl-stop many sigkill)
for group in "${groups[@]}"; do
	start=$(now_ms)
	case "$group" in
	tpm2 | tpm12 | restart | many | sigkill) "group_$group" ;;
	ioctl-stop) group_ioctl_stop ;;
	*)
		not_ok "known check group" "invalid group '$group'"
		exit 2
		;;
	esac
	echo "# group $group took $(($(now_ms) - start)) ms"
done

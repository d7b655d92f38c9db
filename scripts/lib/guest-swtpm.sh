# SPDX-License-Identifier: GPL-2.0
#
# Helpers for scripts that run inside a test guest: start swtpm on a new
# vTPM proxy device, wait for its device nodes, stop it, and send a raw
# TPM 1.2 command. Source it; do not run it.

# Seconds to wait for a device node to appear or go away. Registration of
# a TPM 1.2 chip runs several commands and takes a few seconds under TCG.
SWTPM_WAIT_SECS=${SWTPM_WAIT_SECS:-30}

# wait_for_path PATH [gone] waits until PATH exists (or, with "gone",
# until it no longer exists). Fails after SWTPM_WAIT_SECS.
wait_for_path() {
	local path=$1 want=${2:-present} tries=$((SWTPM_WAIT_SECS * 10))

	while [ "$tries" -gt 0 ]; do
		if [ "$want" = gone ]; then
			[ -e "$path" ] || return 0
		else
			[ -e "$path" ] && return 0
		fi
		sleep 0.1
		tries=$((tries - 1))
	done
	return 1
}

# swtpm_start VERSION STATE_DIR starts swtpm in vTPM proxy mode for a
# TPM 2.0 (VERSION 2) or TPM 1.2 (VERSION 1.2) with its state in
# STATE_DIR, and waits until the kernel has registered the chip. Sets
# SWTPM_PID, TPM_NUM and TPM_DEV (/dev/tpmN); its output goes to
# STATE_DIR.log. Fails with a message on stderr.
swtpm_start() {
	local version=$1 state=$2 args=() tries

	case "$version" in
	2)
		# startup-clear: swtpm sends TPM2_Startup itself, as the
		# kernel's start-up code expects from a firmware-started TPM.
		args=(--tpm2 --flags startup-clear)
		;;
	1.2) ;;
	*)
		echo "swtpm_start: invalid TPM version '$version'" >&2
		return 1
		;;
	esac

	mkdir -p "$state"
	swtpm chardev --vtpm-proxy "${args[@]}" --tpmstate dir="$state" \
		>"$state.log" 2>&1 &
	SWTPM_PID=$!

	# swtpm prints "New TPM device: /dev/tpmN (major/minor = M/N)" once
	# the ioctl on /dev/vtpmx has returned.
	tries=$((SWTPM_WAIT_SECS * 10))
	TPM_DEV=
	while [ "$tries" -gt 0 ] && kill -0 "$SWTPM_PID" 2>/dev/null; do
		TPM_DEV=$(sed -n 's|^New TPM device: \(/dev/tpm[0-9]*\) .*|\1|p' "$state.log")
		[ -z "$TPM_DEV" ] || break
		sleep 0.1
		tries=$((tries - 1))
	done
	if [ -z "$TPM_DEV" ]; then
		echo "swtpm did not report a new TPM device; its output:" >&2
		cat "$state.log" >&2
		return 1
	fi
	TPM_NUM=${TPM_DEV#/dev/tpm}

	# The ioctl returns before the chip is registered. The nodes appear
	# once swtpm has responded to the kernel's start-up commands.
	if ! wait_for_path "$TPM_DEV" ||
		{ [ "$version" = 2 ] && ! wait_for_path "/dev/tpmrm$TPM_NUM"; }; then
		echo "$TPM_DEV did not appear within ${SWTPM_WAIT_SECS}s; swtpm output:" >&2
		cat "$state.log" >&2
		return 1
	fi
}

# swtpm_stop stops the swtpm started by swtpm_start and waits until its
# device nodes are gone.
swtpm_stop() {
	kill "$SWTPM_PID" 2>/dev/null
	wait "$SWTPM_PID" 2>/dev/null
	wait_for_path "$TPM_DEV" gone &&
		wait_for_path "/dev/tpmrm$TPM_NUM" gone
}

# tpm12_getrandom DEV COUNT sends TPM_GetRandom for COUNT bytes (at most
# 255) through DEV and prints the random bytes in hex. Fails unless the
# response has the TPM 1.2 response tag, return code 0 and COUNT bytes.
tpm12_getrandom() {
	local dev=$1 count=$2 response

	# tag TPM_TAG_RQU_COMMAND (0x00c1), size 14, ordinal
	# TPM_ORD_GetRandom (0x46), bytesRequested.
	response=$(
		exec 3<>"$dev" || exit 1
		printf "\\x00\\xc1\\x00\\x00\\x00\\x0e\\x00\\x00\\x00\\x46\\x00\\x00\\x00\\x$(printf %02x "$count")" >&3
		dd bs=4096 count=1 status=none <&3 | od -An -v -tx1 | tr -d ' \n'
	) || return 1

	# tag TPM_TAG_RSP_COMMAND (0x00c4), size, return code, byte count.
	case "$response" in
	00c4????????00000000000000"$(printf %02x "$count")"*) ;;
	*)
		echo "unexpected TPM_GetRandom response: $response" >&2
		return 1
		;;
	esac
	response=${response:28}
	if [ ${#response} -ne $((count * 2)) ]; then
		echo "TPM_GetRandom returned ${#response} hex digits, expected $((count * 2))" >&2
		return 1
	fi
	echo "$response"
}

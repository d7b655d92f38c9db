#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# In-kernel users of a vTPM proxy chip, as root inside a test guest with
# tpm_vtpm_proxy loaded and no other TPM:
#   - the chip's hwrng, tpm-rng-N, selected as the current hardware RNG
#     and read through /dev/hwrng: the bytes read must be bytes that
#     swtpm sent in its TPM2_GetRandom responses, which its log shows;
#   - trusted keys sealed by the chip, when the kernel has them.
set -uo pipefail

. "$(dirname "$0")/lib.sh"

hwrng=/sys/class/misc/hw_random
# Bytes read from /dev/hwrng. The hwrng core asks the TPM for a buffer
# of at least 32 bytes at a time, so these come from one response.
hwrng_bytes=16

# swtpm_responses LOG prints each response in a swtpm log of level 20 or
# more as one line of lower-case hex. The log shows a response as a line
# " SWTPM_IO_Write: length N" followed by lines of hex bytes.
swtpm_responses() {
	awk '
		/SWTPM_IO_Write:/ { flush(); inside = 1; next }
		/^ *([0-9A-Fa-f][0-9A-Fa-f] *)+$/ { if (inside) { gsub(/ /, ""); hex = hex tolower($0) }; next }
		{ flush(); inside = 0 }
		END { flush() }
		function flush() { if (hex != "") print hex; hex = "" }
	' "$1"
}

check_hwrng() {
	local num rng current bytes log=$work/hwrng.log

	if ! vtpm_start hwrng 2 --log "file=$log,level=20" 2>"$work/start.log"; then
		not_ok_file "tpm-rng-N is listed in rng_available" "$work/start.log"
		return
	fi
	num=$(vtpm_num hwrng)
	rng=tpm-rng-$num

	if grep -qw "$rng" "$hwrng/rng_available"; then
		ok "tpm-rng-N is listed in rng_available"
	else
		not_ok "tpm-rng-N is listed in rng_available" \
			"rng_available: $(cat "$hwrng/rng_available")"
		vtpm_stop hwrng
		return
	fi

	echo "$rng" >"$hwrng/rng_current" 2>"$work/err"
	current=$(cat "$hwrng/rng_current")
	if [ "$current" = "$rng" ]; then
		ok "writing tpm-rng-N to rng_current selects it"
	else
		not_ok "writing tpm-rng-N to rng_current selects it" \
			"rng_current reads '$current'" "$(cat "$work/err")"
	fi

	bytes=$(timeout 30 dd if=/dev/hwrng bs="$hwrng_bytes" count=1 \
		iflag=fullblock status=none | od -An -v -tx1 | tr -d ' \n')
	if [ ${#bytes} -ne $((hwrng_bytes * 2)) ]; then
		not_ok "bytes read from /dev/hwrng come from swtpm" \
			"read '$bytes' instead of $hwrng_bytes bytes"
	elif swtpm_responses "$log" | grep -q "$bytes"; then
		ok "bytes read from /dev/hwrng come from swtpm"
		note "read $bytes; swtpm sent them in a TPM2_GetRandom response"
	else
		not_ok "bytes read from /dev/hwrng come from swtpm" \
			"read $bytes, which is in none of swtpm's $(swtpm_responses "$log" | wc -l) responses"
	fi

	# The hwrng core must let go of the chip while it is the current
	# hardware RNG.
	if vtpm_stop hwrng && ! grep -qw "$rng" "$hwrng/rng_available"; then
		ok "stopping swtpm removes the current tpm-rng-N"
	else
		not_ok "stopping swtpm removes the current tpm-rng-N" \
			"rng_available: $(cat "$hwrng/rng_available")" \
			"rng_current: $(cat "$hwrng/rng_current")" $(tpm_nodes_left)
	fi
}

# kernel_config_has OPTION succeeds when the running kernel was built
# with OPTION=y or =m.
kernel_config_has() {
	if [ -r /proc/config.gz ]; then
		zcat /proc/config.gz
	else
		cat "/boot/config-$(uname -r)"
	fi 2>/dev/null | grep -Eq "^$1=(y|m)$"
}

# NOTE: Debian's 6.1 and 6.12 kernels do not set CONFIG_TRUSTED_KEYS, so
# the sealing below has only run on kernels built with it by hand.
check_trusted_keys() {
	local behaviour="trusted key sealed by the TPM loads again" blob num

	if ! kernel_config_has CONFIG_TRUSTED_KEYS; then
		skip "$behaviour" "CONFIG_TRUSTED_KEYS is not set in kernel $(uname -r)"
		return
	fi
	if ! command -v keyctl >/dev/null; then
		skip "$behaviour" "keyctl (Debian package keyutils) is not installed"
		return
	fi
	if ! vtpm_start trusted 2 2>"$work/start.log"; then
		not_ok_file "$behaviour" "$work/start.log"
		return
	fi
	num=$(vtpm_num trusted)

	# A TPM 2.0 trusted key is sealed under a persistent storage key.
	if tpm2 "/dev/tpmrm$num" createprimary -C o -G ecc256 \
		-c "$work/srk.ctx" >"$work/err" 2>&1 &&
		tpm2 "/dev/tpmrm$num" evictcontrol -C o -c "$work/srk.ctx" \
			0x81000001 >>"$work/err" 2>&1 &&
		keyctl add trusted vtpm-test "new 32 keyhandle=0x81000001" @u \
			>"$work/key.id" 2>>"$work/err" &&
		blob=$(keyctl pipe "$(cat "$work/key.id")" 2>>"$work/err") &&
		keyctl unlink "$(cat "$work/key.id")" @u >/dev/null 2>&1 &&
		keyctl add trusted vtpm-test "load $blob keyhandle=0x81000001" @u \
			>/dev/null 2>>"$work/err"; then
		ok "$behaviour"
	else
		not_ok_file "$behaviour" "$work/err"
	fi
	keyctl purge -s trusted vtpm-test >/dev/null 2>&1
	vtpm_stop trusted
}

if [ -n "$(tpm_nodes_left)" ]; then
	not_ok "guest has no TPM before the checks" $(tpm_nodes_left)
	exit 1
fi
check_hwrng
check_trusted_keys

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Quick end-to-end test of the driver, run as root inside a test guest
# (scripts/run-in-guest.sh) with tpm_vtpm_proxy loaded: swtpm serves a
# TPM 2.0 and then a TPM 1.2 through it, and one command goes through
# each. Prints TAP lines and a summary line; with GUEST_OUT set, the TAP
# lines are also written to $GUEST_OUT/smoke.tap. Exits 1 on a failure.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib/guest-swtpm.sh"
. "$top/scripts/lib/lane.sh"

work=$(mktemp -d /tmp/vtpm-smoke.XXXXXX)
if [ -n "${GUEST_OUT:-}" ]; then
	LANE_TAP_FILE=$GUEST_OUT/smoke.tap
	: >"$LANE_TAP_FILE"
fi

smoke_tpm2() {
	local bytes node started=0

	swtpm_start 2 "$work/tpm2" && started=1
	[ "$started" = 1 ] &&
		[ "$(cat "/sys/class/tpm/tpm$TPM_NUM/tpm_version_major")" = 2 ]
	lane_result $? "swtpm --tpm2 creates /dev/tpmN and /dev/tpmrmN of a TPM 2.0"
	[ "$started" = 1 ] || return

	for node in "/dev/tpmrm$TPM_NUM" "$TPM_DEV"; do
		bytes=$(TPM2TOOLS_TCTI=device:$node timeout 60 tpm2_getrandom --hex 8)
		[[ "$bytes" =~ ^[0-9a-f]{16}$ ]]
		lane_result $? "tpm2_getrandom through $node returns 8 bytes"
	done

	swtpm_stop
	lane_result $? "stopping swtpm removes the TPM 2.0 device nodes"
}

smoke_tpm12() {
	local bytes pcrs started=0

	swtpm_start 1.2 "$work/tpm12" && started=1
	[ "$started" = 1 ] && [ ! -e "/dev/tpmrm$TPM_NUM" ]
	lane_result $? "swtpm without --tpm2 creates /dev/tpmN of a TPM 1.2 without tpmrm"
	[ "$started" = 1 ] || return

	bytes=$(tpm12_getrandom "$TPM_DEV" 16)
	[[ "$bytes" =~ ^[0-9a-f]{32}$ ]]
	lane_result $? "TPM_GetRandom through $TPM_DEV returns 16 bytes"

	pcrs=$(cat "/sys/class/tpm/tpm$TPM_NUM/pcrs" 2>/dev/null ||
		cat "/sys/class/tpm/tpm$TPM_NUM/device/pcrs" 2>/dev/null)
	[ "$(grep -c '^PCR-[0-9][0-9]:' <<<"$pcrs")" = 24 ]
	lane_result $? "sysfs pcrs of the TPM 1.2 lists 24 PCRs"

	swtpm_stop
	lane_result $? "stopping swtpm removes the TPM 1.2 device node"
}

smoke_tpm2
smoke_tpm12
lane_finish

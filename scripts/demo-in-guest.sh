#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Show the vTPM proxy driver at work. Runs as root inside a test guest
# (scripts/run-in-guest.sh) with tpm_vtpm_proxy loaded and no other TPM.
#
# swtpm serves a TPM 2.0 through the driver and tpm2-tools use it through
# /dev/tpm0 and /dev/tpmrm0; then swtpm serves a TPM 1.2. Each step prints
# PASS or FAIL with what it did and what it got. Exits 1 if any step
# failed.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib/guest-swtpm.sh"

# Seconds any single TPM tool may take before the step fails.
tool_timeout=60
work=$(mktemp -d /tmp/vtpm-demo.XXXXXX)
failed=0

pass() { printf 'PASS %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*"; failed=$((failed + 1)); }

# tpm2 NODE TOOL [ARG]... runs a tpm2-tools program against NODE.
tpm2() {
	local node=$1 tool=$2

	shift 2
	TPM2TOOLS_TCTI=device:$node timeout "$tool_timeout" "tpm2_$tool" "$@"
}

# hash_hex HEX prints the SHA-256 of the bytes written in HEX.
hash_hex() {
	printf "$(sed 's/../\\x&/g' <<<"$1")" | sha256sum | cut -d' ' -f1
}

# pcr_value NODE INDEX prints PCR INDEX of the SHA-256 bank in lower-case
# hex, without the 0x.
pcr_value() {
	tpm2 "$1" pcrread "sha256:$2" |
		sed -n "s/^ *$2 *: 0x\([0-9A-Fa-f]*\)$/\1/p" | tr 'A-F' 'a-f'
}

demo_tpm2_getrandom() {
	local node bytes

	for node in "$TPM_DEV" "/dev/tpmrm$TPM_NUM"; do
		if bytes=$(tpm2 "$node" getrandom --hex 16) &&
			[[ "$bytes" =~ ^[0-9a-f]{32}$ ]]; then
			pass "getrandom via $node: 16 bytes 0x$bytes"
		else
			fail "getrandom via $node: got '$bytes'"
		fi
	done
}

demo_tpm2_pcrread() {
	local node=/dev/tpmrm$TPM_NUM value zeros ones

	zeros=$(printf '0%.0s' {1..64})
	ones=$(printf 'f%.0s' {1..64})
	value=$(pcr_value "$node" 0)
	if [ "$value" = "$zeros" ]; then
		pass "pcrread sha256 PCR 0 via $node: all zero (nothing measured)"
	else
		fail "pcrread sha256 PCR 0 via $node: expected all zero, got '$value'"
	fi
	value=$(pcr_value "$TPM_DEV" 17)
	if [ "$value" = "$ones" ]; then
		pass "pcrread sha256 PCR 17 via $TPM_DEV: all FF (the reset value of the DRTM PCRs)"
	else
		fail "pcrread sha256 PCR 17 via $TPM_DEV: expected all FF, got '$value'"
	fi
}

demo_tpm2_pcrextend() {
	local node=/dev/tpmrm$TPM_NUM before digest expected after

	before=$(pcr_value "$node" 16)
	digest=$(printf 'vtpm proxy demo' | sha256sum | cut -d' ' -f1)
	# Extending computes PCR := SHA-256(PCR || digest).
	expected=$(hash_hex "$before$digest")
	if ! tpm2 "$node" pcrextend "16:sha256=$digest"; then
		fail "pcrextend sha256 PCR 16 via $node with $digest"
		return
	fi
	after=$(pcr_value "$node" 16)
	if [ "$after" = "$expected" ]; then
		pass "pcrextend sha256 PCR 16 via $node: 0x${before:0:16}... extended with 0x${digest:0:16}... reads back 0x$after as computed"
	else
		fail "pcrextend sha256 PCR 16 via $node: expected $expected, got '$after'"
	fi
}

demo_tpm2_sign() {
	local node=/dev/tpmrm$TPM_NUM

	cd "$work" || return
	if tpm2 "$node" createprimary -Q -C o -G ecc256 -c primary.ctx; then
		pass "createprimary via $node: ECC P-256 primary key in the owner hierarchy"
	else
		fail "createprimary via $node"
		return
	fi
	if tpm2 "$node" create -Q -C primary.ctx -G ecc256:ecdsa-sha256 \
		-u key.pub -r key.priv; then
		pass "create via $node: ECDSA P-256 signing key under the primary key"
	else
		fail "create via $node"
		return
	fi
	if tpm2 "$node" load -Q -C primary.ctx -u key.pub -r key.priv -c key.ctx; then
		pass "load via $node: signing key loaded"
	else
		fail "load via $node"
		return
	fi
	printf 'a message signed inside the vTPM\n' >message
	if tpm2 "$node" sign -Q -c key.ctx -g sha256 -o message.sig message; then
		pass "sign via $node: $(stat -c %s message.sig)-byte ECDSA signature of a $(stat -c %s message)-byte message"
	else
		fail "sign via $node"
		return
	fi
	if tpm2 "$node" verifysignature -Q -c key.ctx -g sha256 -m message \
		-s message.sig -t message.ticket; then
		pass "verifysignature via $node: the TPM accepts the signature"
	else
		fail "verifysignature via $node: the TPM rejects a signature it made"
	fi
	printf 'a changed message\n' >message
	if tpm2 "$node" verifysignature -Q -c key.ctx -g sha256 -m message \
		-s message.sig -t message.ticket 2>/dev/null; then
		fail "verifysignature via $node: the TPM accepts the signature for a changed message"
	else
		pass "verifysignature via $node: the TPM rejects the signature for a changed message"
	fi
	cd / || return
}

demo_tpm2() {
	local version

	echo "== TPM 2.0: swtpm chardev --vtpm-proxy --tpm2"
	if ! swtpm_start 2 "$work/tpm2"; then
		fail "swtpm created a TPM 2.0 device"
		return
	fi
	version=$(cat "/sys/class/tpm/tpm$TPM_NUM/tpm_version_major" 2>/dev/null)
	if [ "$version" = 2 ]; then
		pass "swtpm created $TPM_DEV and /dev/tpmrm$TPM_NUM, tpm_version_major $version"
	else
		fail "swtpm created $TPM_DEV, but tpm_version_major is '$version', expected 2"
	fi

	demo_tpm2_getrandom
	demo_tpm2_pcrread
	demo_tpm2_pcrextend
	demo_tpm2_sign

	if swtpm_stop; then
		pass "stopping swtpm removed $TPM_DEV and /dev/tpmrm$TPM_NUM"
	else
		fail "stopping swtpm: $TPM_DEV or /dev/tpmrm$TPM_NUM still exists after ${SWTPM_WAIT_SECS}s"
	fi
}

# show_tpm12_sysfs prints the TPM 1.2 sysfs files. Kernels place them in
# the chip's class folder, or for a chip with a parent device in device/.
show_tpm12_sysfs() {
	local class=/sys/class/tpm/tpm$TPM_NUM name dir found

	for name in durations timeouts pcrs; do
		found=
		for dir in "$class" "$class/device"; do
			[ -r "$dir/$name" ] || continue
			found=$dir/$name
			break
		done
		if [ -z "$found" ]; then
			fail "sysfs: no $name in $class or $class/device"
			continue
		fi
		if [ "$name" = pcrs ]; then
			if grep -q '^PCR-00:' "$found"; then
				pass "sysfs $found lists $(grep -c '^PCR-' "$found") PCRs; the first three:"
				head -n 3 "$found" | sed 's/^/     /'
			else
				fail "sysfs $found has no PCR-00 line"
			fi
		elif [ -s "$found" ]; then
			pass "sysfs $found: $(cat "$found")"
		else
			fail "sysfs $found is empty"
		fi
	done
}

demo_tpm12() {
	local bytes

	echo "== TPM 1.2: swtpm chardev --vtpm-proxy"
	if ! swtpm_start 1.2 "$work/tpm12"; then
		fail "swtpm created a TPM 1.2 device"
		return
	fi
	if [ -e "/dev/tpmrm$TPM_NUM" ]; then
		fail "swtpm created $TPM_DEV, and /dev/tpmrm$TPM_NUM exists, which a TPM 1.2 does not have"
	else
		pass "swtpm created $TPM_DEV (TPM 1.2: no /dev/tpmrm$TPM_NUM)"
	fi

	show_tpm12_sysfs

	if bytes=$(tpm12_getrandom "$TPM_DEV" 16); then
		pass "TPM_GetRandom via $TPM_DEV: 16 bytes 0x$bytes"
	else
		fail "TPM_GetRandom via $TPM_DEV"
	fi

	if swtpm_stop; then
		pass "stopping swtpm removed $TPM_DEV"
	else
		fail "stopping swtpm: $TPM_DEV still exists after ${SWTPM_WAIT_SECS}s"
	fi
}

echo "== kernel $(uname -r), module: ${VTPM_MODULE:-unknown}"
if [ -c /dev/vtpmx ]; then
	pass "/dev/vtpmx exists; tpm_vtpm_proxy srcversion '$(cat /sys/module/tpm_vtpm_proxy/srcversion 2>/dev/null)', taint '$(cat /sys/module/tpm_vtpm_proxy/taint 2>/dev/null)'"
else
	fail "/dev/vtpmx is missing: is tpm_vtpm_proxy loaded?"
	exit 1
fi

demo_tpm2
demo_tpm12

if [ "$failed" -gt 0 ]; then
	echo "== demo FAILED: $failed step(s) failed"
	exit 1
fi
echo "== demo passed"

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Check which tpm_vtpm_proxy `modprobe` loads, inside a test guest booted
# with no module loaded (scripts/run-in-guest.sh -m none). Part of
# scripts/dkms-lane.sh.
#
# Usage: dkms-guest.sh dkms|debian
#   dkms    the package tpm-vtpm-proxy-dkms is installed on the host:
#           modprobe must load the module that DKMS built into
#           /lib/modules/KREL/updates/dkms, and swtpm with tpm2-tools
#           must work through it (swtpm-workflows.sh tpm2 restart)
#   debian  the package was removed: modprobe must load Debian's module
#           from /lib/modules/KREL/kernel again
set -uo pipefail

. "$(dirname "$0")/lib.sh"

mode=${1:-}
krel=$(uname -r)
sysmod=/sys/module/tpm_vtpm_proxy

# check_identity DIR OUT_OF_TREE checks that the loaded module is the
# file under /lib/modules/KREL/DIR and that its taint has O exactly when
# OUT_OF_TREE is yes.
check_identity() {
	local dir=$1 out_of_tree=$2 file taint has_o behaviour loaded expected

	file=$(modinfo -n tpm_vtpm_proxy 2>&1)
	# Debian's module is in kernel/drivers/char/tpm/, DKMS's directly in
	# updates/dkms/.
	case "$file" in
	"/lib/modules/$krel/$dir/"*tpm_vtpm_proxy.ko*)
		ok "modprobe resolves tpm_vtpm_proxy to $dir"
		;;
	*)
		not_ok "modprobe resolves tpm_vtpm_proxy to $dir" \
			"modinfo -n tpm_vtpm_proxy: $file"
		return 1
		;;
	esac

	if ! modprobe tpm_vtpm_proxy 2>"$work/err"; then
		not_ok_file "modprobe tpm_vtpm_proxy loads the module" "$work/err"
		return 1
	fi
	ok "modprobe tpm_vtpm_proxy loads the module"

	if [ "$out_of_tree" = yes ]; then
		behaviour="loaded module is out of tree (taint O)"
	else
		behaviour="loaded module is in tree (taint without O)"
	fi
	taint=$(cat "$sysmod/taint" 2>&1)
	has_o=no
	[[ "$taint" == *O* ]] && has_o=yes
	if [ "$has_o" = "$out_of_tree" ]; then
		ok "$behaviour"
	else
		not_ok "$behaviour" "taint '$taint'"
	fi

	loaded=$(cat "$sysmod/srcversion" 2>/dev/null)
	expected=$(modinfo -F srcversion "$file" 2>/dev/null)
	if [ -n "$expected" ] && [ "$loaded" = "$expected" ]; then
		ok "loaded srcversion equals that of the $dir module"
	else
		not_ok "loaded srcversion equals that of the $dir module" \
			"loaded '$loaded', $file has '$expected'"
	fi
	[ -c /dev/vtpmx ] || not_ok "modprobe tpm_vtpm_proxy creates /dev/vtpmx"
}

if [ -d "$sysmod" ]; then
	not_ok "tpm_vtpm_proxy is not loaded before modprobe" \
		"taint '$(cat "$sysmod/taint")'"
	exit 1
fi

case "$mode" in
dkms)
	check_identity updates/dkms yes || exit 1
	"$(dirname "$0")/swtpm-workflows.sh" tpm2 restart
	;;
debian)
	dkms_files=$(ls "/lib/modules/$krel/updates/dkms/"tpm_vtpm_proxy.ko* 2>/dev/null)
	if [ -z "$dkms_files" ]; then
		ok "no DKMS tpm_vtpm_proxy is left in updates/dkms"
	else
		not_ok "no DKMS tpm_vtpm_proxy is left in updates/dkms" $dkms_files
	fi
	check_identity kernel no
	;;
*)
	echo "usage: $0 dkms|debian" >&2
	exit 2
	;;
esac

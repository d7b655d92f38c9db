#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Show that the selftests catch a broken driver. Each mutant is a copy of
# our driver with one deliberate bug. The lane builds every mutant, then
# runs the whole vtpm_proxy selftest suite, 64-bit build, against each in
# turn in one guest boot, loading each mutant in place of the one before.
# The suite must fail, and the failures must include the test that names
# the behaviour the bug breaks.
#
# Usage: scripts/mutation-lane.sh [SERIES]
#   SERIES  6.1 (default) or 6.12
#
# Prints one TAP line per mutant and ends with "N passed, N failed": a
# mutant passes when the suite ran to its end and failed on it as
# expected. The mutants are built in build/mutants/NAME/, and the guest
# run's console log and TAP files (tap-NAME.txt) are kept in
# build/mutants/run/.
#
# Inside the guest, run-in-guest.sh starts this script again with
# --guest-run, which runs the suite against each mutant.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib/deps.sh"
. "$top/scripts/lib/kernel-series.sh"
. "$top/scripts/lib/lane.sh"

driver=drivers/char/tpm/tpm_vtpm_proxy.c
suite=$top/build/selftests/64/vtpm_proxy_test

# Each mutant: its name, the sed expression that puts the bug in, and
# the test that must fail, separated by "|".
mutants=(
	"late-response-delivered|s/proxy->drop_late_response = true;/proxy->drop_late_response = false;/|late_response_after_timeout_is_dropped"
	"client-set-locality-allowed|s/if (ordinal == TPM2_CC_SET_LOCALITY \&\& !proxy->driver_command)/if (0)/|client_set_locality_is_rejected"
	"nonblocking-read-blocks|s/if (file->f_flags \& O_NONBLOCK)/if (0)/|read_without_command_nonblocking_fails_eagain"
	"idle-poll-writable|s/__poll_t mask = 0;/__poll_t mask = EPOLLOUT;/|poll_on_idle_device_reports_nothing"
)

# build_mutant NAME EXPRESSION builds the mutant's module, at the path
# that mutant_module prints.
build_mutant() {
	local name=$1 expression=$2 dir=$top/build/mutants/$1 log

	rm -rf "$dir"
	mkdir -p "$dir/drivers/char/tpm" "$dir/include/uapi/linux"
	cp "$top"/drivers/char/tpm/*.[ch] "$top/drivers/char/tpm/Kbuild" \
		"$dir/drivers/char/tpm/"
	cp "$top/include/uapi/linux/vtpm_proxy.h" "$dir/include/uapi/linux/"
	sed -i "$expression" "$dir/$driver"
	if cmp -s "$top/$driver" "$dir/$driver"; then
		echo "the sed expression '$expression' changed nothing in $driver; update the mutant to match the driver" >&2
		return 1
	fi
	log=$dir/build.log
	if ! make -C "/lib/modules/$krel/build" M="$dir/drivers/char/tpm" \
		CONFIG_TCG_VTPM_PROXY=m CONFIG_MODULE_SRCVERSION_ALL=y \
		modules >"$log" 2>&1; then
		cat "$log" >&2
		return 1
	fi
}

# mutant_module NAME prints the path of mutant NAME's module.
mutant_module() {
	echo "$top/build/mutants/$1/drivers/char/tpm/tpm_vtpm_proxy.ko"
}

# guest_run runs the suite against each mutant named in $MUTANTS, in
# order. run-in-guest.sh has loaded the first, and each later one
# replaces the one before. The TAP output goes to $GUEST_OUT/tap-NAME.txt.
guest_run() {
	local name ko loaded expected first=1

	for name in $MUTANTS; do
		ko=$(mutant_module "$name")
		if [ -z "$first" ]; then
			# The unload test loads the module again, but a failed
			# run of it may leave none loaded.
			if [ -d /sys/module/tpm_vtpm_proxy ] &&
				! rmmod tpm_vtpm_proxy; then
				echo "# mutant $name: rmmod of the mutant before it failed"
				continue
			fi
			if ! insmod "$ko"; then
				echo "# mutant $name: insmod $ko failed"
				continue
			fi
		fi
		first=
		loaded=$(cat /sys/module/tpm_vtpm_proxy/srcversion 2>/dev/null)
		expected=$(modinfo -F srcversion "$ko")
		if [ -z "$loaded" ] || [ "$loaded" != "$expected" ]; then
			echo "# mutant $name: the loaded module has srcversion '$loaded', not '$expected' of $ko"
			continue
		fi
		echo "# mutant $name: running the suite"
		VTPM_PROXY_MODULE=$ko "$suite" >"$GUEST_OUT/tap-$name.txt" 2>&1
	done
}

if [ "${1:-}" = --guest-run ]; then
	guest_run
	exit 0
fi

series=${1:-6.1}
check_series "$series"
need_packages "$(series_headers_package "$series")" make gcc
krel=$(series_release "$series" build)
[ -n "$krel" ] || die "no kernel headers of the $series series found; install $(series_headers_package "$series")"

info "building the vtpm_proxy selftests (64-bit)"
make -s -C "$top/tools/testing/selftests/vtpm_proxy" \
	OUTPUT="$top/build/selftests/64" >&2 ||
	die "building the 64-bit selftests failed"

# Build every mutant first: the guest runs the suite against all of them.
built=()
for mutant in "${mutants[@]}"; do
	IFS='|' read -r name expression test <<<"$mutant"
	if build_mutant "$name" "$expression"; then
		built+=("$name")
	else
		lane_not_ok "$series: mutant $name builds"
	fi
done
[ "${#built[@]}" -gt 0 ] || lane_finish

out=$top/build/mutants/run
rm -rf "$out"
mkdir -p "$out"
info "running the selftests on $series against mutants ${built[*]}"
rc=0
# The 64-bit build is enough: no mutant touches the compat path.
"$top/scripts/run-in-guest.sh" -s "$series" -m "$(mutant_module "${built[0]}")" \
	-t 2400 -o "$out" -e "MUTANTS=${built[*]}" -- \
	scripts/mutation-lane.sh --guest-run >"$out/run.log" 2>&1 || rc=$?
[ "$rc" -eq 0 ] ||
	echo "# run-in-guest.sh failed with status $rc; see $out/run.log and $out/console.log"

for mutant in "${mutants[@]}"; do
	IFS='|' read -r name expression test <<<"$mutant"
	[[ " ${built[*]} " == *" $name "* ]] || continue
	tap=$out/tap-$name.txt
	failures=$(grep -cE '^not ok ' "$tap" 2>/dev/null)
	caught=$(grep -cE "^not ok [0-9]+ [^ ]*\.$test( |\$)" "$tap" 2>/dev/null)
	echo "# mutant $name: ${failures:-0} failed tests, ${caught:-0} of them $test"
	# A guest run that failed, or a suite that did not reach its totals
	# line, proves nothing about the tests.
	[ "$rc" -eq 0 ] && grep -q '^# Totals: ' "$tap" 2>/dev/null &&
		[ "${caught:-0}" -gt 0 ]
	lane_result $? "$series: the selftests fail on mutant $name, in $test"
done

lane_finish

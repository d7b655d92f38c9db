#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Show that the selftests catch a broken driver. Each mutant is a copy of
# our driver with one deliberate bug. The lane builds it and runs the whole
# vtpm_proxy selftest suite, 64-bit build, against it in a guest
# (scripts/selftest-lane.sh).
# The suite must fail, and the failures must include the test that names
# the behaviour the bug breaks.
#
# Usage: scripts/mutation-lane.sh [SERIES]
#   SERIES  6.1 (default) or 6.12
#
# Prints one TAP line per mutant and ends with "N passed, N failed": a
# mutant passes when the suite failed on it as expected. The mutants are
# built in build/mutants/NAME/, and the runs' results are kept in
# build/selftest-lane/SERIES-custom/ until the next mutant's run.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib/deps.sh"
. "$top/scripts/lib/kernel-series.sh"
. "$top/scripts/lib/lane.sh"

series=${1:-6.1}
check_series "$series"
driver=drivers/char/tpm/tpm_vtpm_proxy.c

# Each mutant: its name, the sed expression that puts the bug in, and
# the test that must fail, separated by "|".
mutants=(
	"late-response-delivered|s/proxy->drop_late_response = true;/proxy->drop_late_response = false;/|late_response_after_timeout_is_dropped"
	"client-set-locality-allowed|s/if (ordinal == TPM2_CC_SET_LOCALITY \&\& !proxy->driver_command)/if (0)/|client_set_locality_is_rejected"
	"nonblocking-read-blocks|s/if (file->f_flags \& O_NONBLOCK)/if (0)/|read_without_command_nonblocking_fails_eagain"
	"idle-poll-writable|s/__poll_t mask = 0;/__poll_t mask = EPOLLOUT;/|poll_on_idle_device_reports_nothing"
)

need_packages "$(series_headers_package "$series")" make gcc
krel=$(series_release "$series" build)
[ -n "$krel" ] || die "no kernel headers of the $series series found; install $(series_headers_package "$series")"

# build_mutant NAME EXPRESSION prints the path of the mutant's module.
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
	echo "$dir/drivers/char/tpm/tpm_vtpm_proxy.ko"
}

for mutant in "${mutants[@]}"; do
	IFS='|' read -r name expression test <<<"$mutant"
	if ! ko=$(build_mutant "$name" "$expression"); then
		lane_not_ok "$series: mutant $name builds"
		continue
	fi

	info "running the selftests on $series against mutant $name"
	rc=0
	# The 64-bit build is enough: no mutant touches the compat path.
	SELFTEST_BUILDS=64 "$top/scripts/selftest-lane.sh" "$series" "$ko" \
		>/dev/null 2>&1 || rc=$?
	results=$top/build/selftest-lane/$series-custom
	failures=$(grep -hcE '^not ok ' "$results"/tap-*.txt 2>/dev/null |
		awk '{ n += $1 } END { print n + 0 }')
	caught=$(grep -hE "^not ok [0-9]+ [^ ]*\.$test( |\$)" \
		"$results"/tap-*.txt 2>/dev/null | wc -l)
	echo "# mutant $name: selftest-lane.sh status $rc, $failures failed tests, $caught of them $test"
	# Status 1 is failed tests; a guest that did not run the suite
	# (status above 1) proves nothing about the tests.
	[ "$rc" -eq 1 ] && [ "$caught" -gt 0 ]
	lane_result $? "$series: the selftests fail on mutant $name, in $test"
done

lane_finish

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The vtpm_proxy kselftests, 64-bit and 32-bit, against our module on each
# kernel series, and the same suite against Debian's module for the table
# of differing outcomes, which must hold only the intended improvements.
# Counts every test of our module's runs plus one result per series for
# the comparison.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib/lane.sh"
passed=0
failed=0
skipped=0
for series in $SERIES; do
	log=${CHECK_OUT:-$top/build/check}/selftests-$series.txt
	mkdir -p "$(dirname "$log")"
	rc=0
	"$top/scripts/selftest-lane.sh" --compare "$series" ours | tee "$log" || rc=$?

	# The TAP files of our module's run.
	read -r p f s < <(tap_counts "$top/build/selftest-lane/$series-ours")
	passed=$((passed + p))
	failed=$((failed + f))
	skipped=$((skipped + s))
	echo "$series: our module: $p passed, $f failed, $s skipped"

	if [ "$rc" -eq 0 ]; then
		passed=$((passed + 1))
		echo "ok - $series: outcomes differ from Debian's driver only where intended"
	else
		failed=$((failed + 1))
		echo "not ok - $series: outcomes differ from Debian's driver only where intended (see $log)"
	fi
done

echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]

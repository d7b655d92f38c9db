#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Lane "debug-kernel": build the debug kernel of scripts/build-debug-kernel.sh
# (KASAN, lockdep, kmemleak, debugobjects, list debugging) with our driver
# in tree. Boot it to run the selftests (64-bit build) against the in-tree
# build, then a short stress pass against our module built out of tree.
# The 32-bit build runs on the Debian kernels in the selftests lane. A finished
# build of the same inputs is reused, so only the first run in a checkout
# pays for the kernel's compile.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib/deps.sh"
. "$top/scripts/lib/lane.sh"

# count_tap DIR adds the results in DIR/tap-*.txt of a selftest run to
# the lane's totals.
count_tap() {
	local p f s

	read -r p f s < <(tap_counts "$1")
	lane_passed=$((lane_passed + p))
	lane_failed=$((lane_failed + f))
	lane_skipped=$((lane_skipped + s))
	echo "# $p passed, $f failed, $s skipped in $1"
}

start=$(date +%s)
if ! "$top/scripts/build-debug-kernel.sh" >/dev/null; then
	lane_not_ok "debug kernel builds with our driver in tree and out of tree"
	lane_finish
fi
lane_ok "debug kernel builds with our driver in tree and out of tree"
echo "# time debug kernel: $(($(date +%s) - start)) s; last compile: $(cat "$top/build/debug-kernel/current/times")"

start=$(date +%s)
SELFTEST_BUILDS=64 "$top/scripts/selftest-lane.sh" debug in-tree | grep -E '^not ok |^[0-9]+ passed, '
status=${PIPESTATUS[0]}
echo "# time selftests against the in-tree build: $(($(date +%s) - start)) s"
count_tap "$top/build/selftest-lane/debug-in-tree"
# Status 1 is failed tests, counted above; anything else means the guest
# run failed: a kernel log report, a time out or a setup error.
[ "$status" -le 1 ]
lane_result $? "debug kernel: selftest run against the in-tree build finished with a clean kernel log (status $status)"

start=$(date +%s)
"$top/scripts/stress.sh" -z short -o "$CHECK_OUT/stress" debug | tee "$CHECK_OUT/stress.log"
echo "# time short stress pass: $(($(date +%s) - start)) s"
read -r p f < <(sed -nE 's/^([0-9]+) passed, ([0-9]+) failed$/\1 \2/p' \
	"$CHECK_OUT/stress.log" | tail -n 1)
if [ -z "${p:-}" ]; then
	lane_not_ok "debug kernel: short stress pass reported its results"
else
	lane_passed=$((lane_passed + p))
	lane_failed=$((lane_failed + f))
fi

lane_finish

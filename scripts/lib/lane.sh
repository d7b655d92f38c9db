# SPDX-License-Identifier: GPL-2.0
#
# Result reporting for the lanes of scripts/check.sh. Source it; do not
# run it.
#
# Each result is one TAP line: "ok N - NAME", "not ok N - NAME", or
# "ok N - NAME # SKIP REASON". lane_finish prints the lane's summary line
# "N passed, N failed" (with ", N skipped" when some were skipped), which
# check.sh adds up. With LANE_TAP_FILE set, the result lines are also
# appended to that file.

lane_passed=0
lane_failed=0
lane_skipped=0
lane_count=0

# lane_print FORMAT [ARG]... prints a result line.
lane_print() {
	# shellcheck disable=SC2059
	printf "$@"
	[ -z "${LANE_TAP_FILE:-}" ] || printf "$@" >>"$LANE_TAP_FILE"
}

# lane_ok NAME records a passed test.
lane_ok() {
	lane_count=$((lane_count + 1))
	lane_passed=$((lane_passed + 1))
	lane_print 'ok %d - %s\n' "$lane_count" "$*"
}

# lane_not_ok NAME records a failed test.
lane_not_ok() {
	lane_count=$((lane_count + 1))
	lane_failed=$((lane_failed + 1))
	lane_print 'not ok %d - %s\n' "$lane_count" "$*"
}

# lane_skip NAME REASON records a test that could not run, and why.
# Only for a capability the environment lacks.
lane_skip() {
	lane_count=$((lane_count + 1))
	lane_skipped=$((lane_skipped + 1))
	lane_print 'ok %d - %s # SKIP %s\n' "$lane_count" "$1" "$2"
}

# lane_result STATUS NAME records NAME as passed when STATUS is 0.
lane_result() {
	local status=$1

	shift
	if [ "$status" = 0 ]; then
		lane_ok "$@"
	else
		lane_not_ok "$@"
	fi
}

# tap_counts DIR prints "PASSED FAILED SKIPPED" for the kselftest TAP
# files DIR/tap-*.txt of a selftest-lane.sh run. A run without any result
# counts as one failure.
tap_counts() {
	local counts

	counts=$(awk '
		/^ok [0-9]+ .* # SKIP/ { s++; next }
		/^ok [0-9]+ / { p++ }
		/^not ok [0-9]+ / { f++ }
		END { printf "%d %d %d\n", p, f, s }' "$1"/tap-*.txt 2>/dev/null)
	[ "${counts:-0 0 0}" != "0 0 0" ] || counts="0 1 0"
	echo "$counts"
}

# lane_finish prints the summary line and exits non-zero on a failure.
lane_finish() {
	if [ "$lane_skipped" -gt 0 ]; then
		printf '%d passed, %d failed, %d skipped\n' \
			"$lane_passed" "$lane_failed" "$lane_skipped"
	else
		printf '%d passed, %d failed\n' "$lane_passed" "$lane_failed"
	fi
	[ "$lane_failed" = 0 ]
	exit
}

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the project's tests, lane by lane, and add up their results. This
# is `make check`.
#
# Usage: scripts/check.sh [LANE]...
#   Without arguments every lane runs. A lane is an executable file
#   scripts/check.d/NN-NAME.sh; lanes run in the order of NN, and LANE is
#   its NAME. SERIES in the environment (default "6.1 6.12") lists the
#   kernel series that the lanes test.
#
# Writing a lane: it runs from the top of the repository with SERIES and
# CHECK_OUT (an empty folder for its files) in the environment, prints
# what it likes, and reports its results on stdout either as TAP lines
# ("ok N - NAME", "not ok N - NAME", a "# SKIP REASON" directive) or as
# a summary line "N passed, N failed" (optionally ", N skipped"). When
# it prints a summary line, the last one counts and TAP lines are not
# added. scripts/lib/lane.sh prints both forms. A lane that exits
# non-zero without reporting a failure counts one failure more; a lane
# that reports nothing counts as one failure.
#
# The output of each lane is also saved in build/check/NAME.log. The last
# line of this script's output is "N passed, N failed" with the totals;
# it exits non-zero when anything failed.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib/deps.sh"

export SERIES=${SERIES:-6.1 6.12}
# Upper bound on a single lane's run time, in seconds.
lane_timeout=${CHECK_LANE_TIMEOUT:-3600}
lanedir=$top/scripts/check.d
logdir=$top/build/check

# lane_name FILE prints the lane name of scripts/check.d/NN-NAME.sh.
lane_name() {
	local name

	name=$(basename "$1" .sh)
	echo "${name#[0-9][0-9]-}"
}

lanes=()
for file in "$lanedir"/[0-9][0-9]-*.sh; do
	if [ ! -x "$file" ]; then
		info "ignoring $file: not executable"
		continue
	fi
	if [ $# -gt 0 ]; then
		[[ " $* " == *" $(lane_name "$file") "* ]] || continue
	fi
	lanes+=("$file")
done
for wanted in "$@"; do
	found=
	for file in "${lanes[@]}"; do
		[ "$(lane_name "$file")" = "$wanted" ] && found=1
	done
	[ -n "$found" ] ||
		die "lane '$wanted' not found; lanes: $(for f in "$lanedir"/[0-9][0-9]-*.sh; do lane_name "$f"; done | tr '\n' ' ')"
done
[ ${#lanes[@]} -gt 0 ] || die "no lanes found in $lanedir"

mkdir -p "$logdir"
total_passed=0
total_failed=0
total_skipped=0
summary=()

# count_results LOG prints "PASSED FAILED SKIPPED" for a lane's output.
count_results() {
	local log=$1 line

	line=$(grep -E '^[0-9]+ passed, [0-9]+ failed(, [0-9]+ skipped)?$' "$log" | tail -n 1)
	if [ -n "$line" ]; then
		sed -E 's/^([0-9]+) passed, ([0-9]+) failed(, ([0-9]+) skipped)?$/\1 \2 \4/' <<<"$line" |
			awk '{ print $1, $2, ($3 == "" ? 0 : $3) }'
		return
	fi
	# Top-level TAP result lines only: the nested ones of kselftest are
	# indented or start with "#".
	awk '
		/^(not )?ok( |$)/ {
			skip = ($0 ~ /#[ \t]*([Ss][Kk][Ii][Pp]|[Tt][Oo][Dd][Oo])/)
			if (skip) skipped++
			else if ($1 == "ok") passed++
			else failed++
		}
		END { print passed + 0, failed + 0, skipped + 0 }
	' "$log"
}

start_all=$(date +%s)
for file in "${lanes[@]}"; do
	name=$(lane_name "$file")
	log=$logdir/$name.log
	export CHECK_OUT=$logdir/$name
	rm -rf "$CHECK_OUT"
	mkdir -p "$CHECK_OUT"

	printf '=== lane %s\n' "$name"
	start=$(date +%s)
	(cd "$top" && timeout -k 10 "$lane_timeout" "$file") 2>&1 | tee "$log"
	status=${PIPESTATUS[0]}
	elapsed=$(($(date +%s) - start))

	read -r passed failed skipped < <(count_results "$log")
	note=
	if [ "$status" = 124 ]; then
		failed=$((failed + 1))
		note=" (timed out after ${lane_timeout}s)"
	elif [ "$status" != 0 ] && [ "$failed" = 0 ]; then
		failed=1
		note=" (exited with status $status)"
	elif [ $((passed + failed + skipped)) = 0 ]; then
		failed=1
		note=" (reported no results)"
	fi

	total_passed=$((total_passed + passed))
	total_failed=$((total_failed + failed))
	total_skipped=$((total_skipped + skipped))
	line=$(printf '%-16s %3d passed, %3d failed, %3d skipped, %4ds%s' \
		"$name" "$passed" "$failed" "$skipped" "$elapsed" "$note")
	summary+=("$line")
	printf -- '--- lane %s\n' "$line"
done

printf '\n=== summary (%ds, logs in %s)\n' "$(($(date +%s) - start_all))" "$logdir"
printf '%s\n' "${summary[@]}"
[ "$total_skipped" = 0 ] || printf '%d skipped\n' "$total_skipped"
printf '%d passed, %d failed\n' "$total_passed" "$total_failed"
[ "$total_failed" = 0 ]

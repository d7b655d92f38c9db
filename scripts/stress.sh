#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Stress, fault and fuzz lanes of the vTPM proxy driver, in a QEMU guest
# of each kernel series with our module loaded (scripts/stress-in-guest.sh
# runs the lanes there; tools/vtpm_stress/ contains the program). This is
# `make stress` at full size, and the "stress" lane of `make check` at
# the CI size.
#
# Usage: scripts/stress.sh [-z full|ci|short] [-l LANES] [-s SEED]
#                          [-o DIR] [-t SECONDS] [SERIES]...
#   -z SIZE    full: every lane at full size (10000 create-and-close
#              cycles, 1000 killed emulators, 2000 device lives with
#              threads, 2000 with rmmod, 10000 fuzzed lives); ci: a
#              twentieth of each; short: a two-hundredth, for the debug
#              kernel, with the module, device and memory checks once
#              after the last lane instead of after each (default full)
#   -l LANES   the lanes to run, quoted, from: cycles kill threads rmmod
#              fuzz (default all)
#   -s SEED    seed of every random choice; the same seed repeats the
#              same choices (default: $SEED, else a fresh one, printed)
#   -o DIR     output folder, one subfolder per series with console.log,
#              dmesg.txt, kmsg.log and results.tap (default
#              $CHECK_OUT, else build/stress)
#   -t SECONDS time limit of each guest run (default 10800 at full size,
#              1800 at the CI and the short size, about three times what a run takes
#              with a Debian kernel on an idle 2-core host under TCG;
#              a kernel with KASAN and lockdep needs more)
#   SERIES     6.1, 6.12 and/or debug (the debug kernel of
#              scripts/build-debug-kernel.sh); default $SERIES, else 6.1
#              and 6.12
#
# Prints one TAP line per check, prefixed with the series, and ends with
# "N passed, N failed", as scripts/check.sh expects. Lines "# time"
# give each guest run's duration. Exits 1 when a check failed.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib/deps.sh"
. "$top/scripts/lib/kernel-series.sh"
. "$top/scripts/lib/lane.sh"

usage() {
	sed -n '10,31p' "$0" | sed 's/^# \{0,1\}//'
}

size=full
lanes="cycles kill threads rmmod fuzz"
seed=${SEED:-}
outtop=${CHECK_OUT:-$top/build/stress}
guest_limit=
while getopts 'z:l:s:o:t:h' opt; do
	case "$opt" in
	z) size=$OPTARG ;;
	l) lanes=$OPTARG ;;
	s) seed=$OPTARG ;;
	o) outtop=$OPTARG ;;
	t) guest_limit=$OPTARG ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
series_list=("$@")
[ ${#series_list[@]} -gt 0 ] || read -r -a series_list <<<"${SERIES:-$KERNEL_SERIES_ALL}"

case "$size" in
full) divisor=1 default_limit=10800 leftovers=each ;;
ci) divisor=20 default_limit=1800 leftovers=each ;;
# Under KASAN one probe and memory check take about 15 s, longer than
# most lanes at this size.
short) divisor=200 default_limit=1800 leftovers=end ;;
*) die "invalid -z '$size': expected full, ci or short" ;;
esac
guest_limit=${guest_limit:-$default_limit}
[[ "$guest_limit" =~ ^[1-9][0-9]*$ ]] ||
	die "invalid -t '$guest_limit': expected a whole number of seconds"
for lane in $lanes; do
	case "$lane" in
	cycles | kill | threads | rmmod | fuzz) ;;
	*) die "invalid lane '$lane' in -l: expected cycles, kill, threads, rmmod or fuzz" ;;
	esac
done
[ -z "$seed" ] || [[ "$seed" =~ ^[0-9]+$ ]] ||
	die "invalid -s '$seed': expected a decimal number"
for series in "${series_list[@]}"; do
	check_guest_series "$series"
done

need_packages gcc make libc6-dev coreutils util-linux
[ -n "$seed" ] || seed=$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')
echo "# seed $seed (scripts/stress.sh -s $seed repeats every lane's choices)"

make -s -C "$top/tools/vtpm_stress" >&2 ||
	die "building tools/vtpm_stress failed"

for series in "${series_list[@]}"; do
	if ! ko=$("$top/scripts/build-module.sh" "$series"); then
		lane_not_ok "$series: stress lanes (our module does not build)"
		continue
	fi

	out=$outtop/$series
	rm -rf "$out"
	mkdir -p "$out"
	start=$(date +%s)
	"$top/scripts/run-in-guest.sh" -s "$series" -m "$ko" -t "$guest_limit" \
		-o "$out" -e "SEED=$seed" -e "STRESS_DIVISOR=$divisor" \
		-e "STRESS_LANES=$lanes" -e "STRESS_LEFTOVERS=$leftovers" -- \
		scripts/stress-in-guest.sh
	status=$?
	echo "# time $series: $(($(date +%s) - start)) s for lanes $lanes at $size size"

	results=0
	while IFS= read -r line; do
		case "$line" in
		"ok - "*) lane_ok "$series: ${line#ok - }" ;;
		"not ok - "*) lane_not_ok "$series: ${line#not ok - }" ;;
		*) continue ;;
		esac
		results=$((results + 1))
	done < <(cat "$out/results.tap" 2>/dev/null)

	# A lane that began and did not end is where the guest died.
	for lane in $lanes; do
		if grep -qx "# begin lane $lane" "$out/results.tap" 2>/dev/null &&
			! grep -qx "# end lane $lane" "$out/results.tap"; then
			lane_not_ok "$series: $lane: the lane ran to its end (the guest stopped during it; see $out/console.log)"
		fi
	done

	# 124 to 126: time limit, module not loaded or not ours, kernel log
	# problem (see scripts/run-in-guest.sh).
	if [ "$status" -ge 124 ] && [ "$status" -le 126 ]; then
		lane_not_ok "$series: guest run finished in time with a clean kernel log (status $status; see $out)"
	else
		lane_ok "$series: guest run finished in time with a clean kernel log"
	fi
	[ "$results" -gt 0 ]
	lane_result $? "$series: stress lanes reported their results"
done
[ "$lane_failed" = 0 ] ||
	echo "# failed with seed $seed; scripts/stress.sh -s $seed repeats every lane's choices"
lane_finish

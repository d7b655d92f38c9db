#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the vtpm_proxy kselftests (64-bit and 32-bit) and run both builds
# in one guest boot of a Debian kernel, against our module or Debian's.
#
# Usage: scripts/selftest-lane.sh SERIES MODULE
#        scripts/selftest-lane.sh --compare SERIES OURS
#
#   SERIES  6.1, 6.12, or debug for the debug kernel of
#           scripts/build-debug-kernel.sh (not with --compare)
#   MODULE  PATH.ko of our module, "ours" to build it for SERIES with
#           scripts/build-module.sh, "debian" for Debian's own module,
#           or "in-tree" for the debug kernel's in-tree build of ours
#   OURS    PATH.ko or "ours"
#
# The first form prints the harness's TAP output as it runs and ends with
# "N passed, N failed" (skips are listed before it). Exit status: 0 when
# nothing failed, 1 when a test failed, or run-in-guest.sh's status when
# the guest run itself failed (124 timeout, 125 setup, 126 kernel log).
#
# --compare runs the suite against OURS and against Debian's module, one
# guest boot each, and prints a table of the tests whose outcome differs.
# Each row is marked with what the in-tree driver does in that test, as
# listed in the "Test outcomes" table of the driver's documentation, or
# UNEXPECTED; the exit status is 1 if any row is unexpected.
#
# Results are kept in build/selftest-lane/SERIES-LABEL/: console.log,
# dmesg.txt and the TAP output of each build (tap-64.txt, tap-m32.txt).
# LABEL is "ours" for the module that scripts/build-module.sh builds,
# "debian", "in-tree", or "custom" for any other .ko.
#
# Environment: LANE_TIMEOUT sets the guest run's time limit in seconds
# (default 2400). SELFTEST_BUILDS lists the builds to run, "64 m32" by
# default or "64". --compare runs Debian's module with the 64-bit build
# only and compares the outcomes of that build: which build runs a test
# does not change what the in-tree driver does.
#
# Inside the guest, run-in-guest.sh starts this script again with
# --guest-run, which runs the two builds.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib/deps.sh"
. "$top/scripts/lib/kernel-series.sh"

usage() {
	sed -n '4,35p' "$0" | sed 's/^# \{0,1\}//'
}

suite_dir=tools/testing/selftests/vtpm_proxy
timeout=${LANE_TIMEOUT:-2400}
builds=${SELFTEST_BUILDS:-64 m32}
case "$builds" in
"64 m32" | 64) ;;
*) die "invalid SELFTEST_BUILDS '$builds': expected \"64 m32\" or \"64\"" ;;
esac

# build_suite builds the 64-bit and the 32-bit test programs.
build_suite() {
	need_packages make gcc gcc-multilib
	info "building the vtpm_proxy selftests (64-bit and -m32)"
	make -s -C "$top/$suite_dir" OUTPUT="$top/build/selftests/64" >&2 ||
		die "building the 64-bit selftests failed"
	make -s -C "$top/$suite_dir" OUTPUT="$top/build/selftests/m32" \
		USERCFLAGS=-m32 USERLDFLAGS=-m32 >&2 ||
		die "building the 32-bit selftests failed"
}

# debian_module_path SERIES prints the path of Debian's tpm_vtpm_proxy
# for the kernel that run-in-guest.sh boots for SERIES.
debian_module_path() {
	local krel path

	krel=$(series_release "$1" boot)
	[ -n "$krel" ] || die "no kernel of the $1 series is installed"
	for path in "/lib/modules/$krel/kernel/drivers/char/tpm/tpm_vtpm_proxy.ko"{,.xz}; do
		[ -f "$path" ] && { echo "$path"; return; }
	done
	die "Debian's tpm_vtpm_proxy module not found under /lib/modules/$krel"
}

# resolve_module SERIES MODULE prints the .ko to load: an absolute path,
# "debian" or "in-tree".
resolve_module() {
	case "$1:$2" in
	*:debian) echo debian ;;
	debug:in-tree) echo in-tree ;;
	*:in-tree) die "in-tree needs the debug kernel" ;;
	*:ours) "$top/scripts/build-module.sh" "$1" ;;
	*)
		[ -f "$2" ] || die "module $2 not found"
		realpath "$2"
		;;
	esac
}

# module_label MODULE names the results folder of a run: "debian",
# "in-tree", "ours" for the module that scripts/build-module.sh builds,
# else "custom".
module_label() {
	case "$1" in
	debian | in-tree) echo "$1" ;;
	"$top"/build/module/*/drivers/char/tpm/tpm_vtpm_proxy.ko) echo ours ;;
	"$top"/build/debug-kernel/*/oot/drivers/char/tpm/tpm_vtpm_proxy.ko)
		echo ours ;;
	*) echo custom ;;
	esac
}

# summarize TAPFILE... prints the skipped tests with their reasons, then
# "N passed, N failed" over all the files.
summarize() {
	awk '
		FNR == 1 { build = FILENAME; sub(/.*tap-/, "", build); sub(/\.txt$/, "", build) }
		/^ok [0-9]+ .* # SKIP/ {
			line = $0
			sub(/^ok [0-9]+ /, "", line)
			skipped[++nr_skipped] = build "-bit " line
			next
		}
		/^ok [0-9]+ / { passed++ }
		/^not ok [0-9]+ / { failed++ }
		END {
			if (nr_skipped) {
				print "skipped (not counted below):"
				for (i = 1; i <= nr_skipped; i++)
					print "  " skipped[i]
			}
			printf "%d passed, %d failed\n", passed, failed
		}' "$@"
}

# run_lane SERIES MODULE LABEL [BUILDS] runs the builds in BUILDS
# (default $builds) in one guest; the TAP files land in
# build/selftest-lane/SERIES-LABEL/.
run_lane() {
	local series=$1 module=$2 label=$3 run_builds=${4:-$builds} out reload
	local rc=0

	out=$top/build/selftest-lane/$series-$label
	rm -rf "$out"
	mkdir -p "$out"

	case "$module" in
	debian) reload=$(debian_module_path "$series") ;;
	in-tree)
		debug_kernel_paths
		reload=$DEBUG_KERNEL_INTREE_KO
		;;
	*) reload=$module ;;
	esac

	info "running the selftests on $series against $label ($module)"
	# Kernel messages on the console start with "[" and are left out
	# here; the whole console is in console.log.
	set +e
	"$top/scripts/run-in-guest.sh" -s "$series" -m "$module" \
		-t "$timeout" -o "$out" -e "VTPM_PROXY_MODULE=$reload" \
		-e "SELFTEST_BUILDS=$run_builds" -- \
		scripts/selftest-lane.sh --guest-run |
		grep --line-buffered -v '^\['
	rc=${PIPESTATUS[0]}
	set -e
	# Test failures come back as status 1; anything else is the guest
	# run's own failure.
	if [ "$rc" -gt 1 ]; then
		echo "run-in-guest.sh failed with status $rc; see $out/console.log"
		return "$rc"
	fi
	for build in $run_builds; do
		[ -s "$out/tap-$build.txt" ] || {
			echo "no TAP output for the $build-bit build; see $out/console.log"
			return 125
		}
	done
	return 0
}

# outcomes DIR [BUILDS] prints "BUILD/TEST OUTCOME" for every test of
# the builds in BUILDS (default $builds).
outcomes() {
	local build

	for build in ${2:-$builds}; do
		sed -nE "s/^ok [0-9]+ ([^ ]+) # SKIP.*/$build\/\1 skip/p
			s/^ok [0-9]+ ([^ ]+)\$/$build\/\1 pass/p
			s/^not ok [0-9]+ ([^ ]+).*/$build\/\1 fail/p" \
			"$1/tap-$build.txt"
	done
}

driver_doc=$top/Documentation/security/tpm/tpm_vtpm_proxy.rst

# expected_differences prints "TEST<TAB>WHAT THE IN-TREE DRIVER DOES" for
# each row of the table in the "Test outcomes" section of the driver's
# documentation: the tests meant to pass with our driver and fail with
# the in-tree one. Reading the table keeps it and the lane in step.
expected_differences() {
	awk '
		function flush() {
			if (test != "")
				print test "\t" why
			test = ""
		}
		/^Test outcomes$/ { section = 1; getline; next }
		!section { next }
		/^[=-]+$/ { exit }
		/^   \* - ``[a-z0-9_]+``$/ {
			flush()
			test = $0
			gsub(/^   \* - ``|``$/, "", test)
			next
		}
		test != "" && /^     - / { why = substr($0, 8); next }
		test != "" && /^       [^ ]/ { why = why " " substr($0, 8); next }
		{ flush() }
		END { flush() }' "$driver_doc" | sed 's/``//g'
}

declare -A expected_why

# load_expected fills expected_why from the documentation's table.
load_expected() {
	local test why

	while IFS=$'\t' read -r test why; do
		expected_why[$test]=$why
	done < <(expected_differences)
	[ ${#expected_why[@]} -gt 0 ] ||
		die "no rows found in the \"Test outcomes\" table of $driver_doc"
}

# improvement TEST prints what the in-tree driver does in the test TEST
# (BUILD/FIXTURE.VARIANT.NAME) according to the documentation, or nothing
# when its outcome is not meant to differ.
improvement() {
	echo "${expected_why[${1##*.}]:-}"
}

compare() {
	local series=$1 ours=$2 unexpected=0 test a b why label rc name
	local lanes=$top/build/selftest-lane
	local -A guest_status differing

	load_expected
	# The TAP output goes to console.log only; the table is the result.
	# A run that left TAP output is compared even if the guest run
	# failed (a kernel log report, say); that failure is printed below.
	for label in ours debian; do
		rc=0
		if [ "$label" = ours ]; then
			run_lane "$series" "$ours" ours >/dev/null || rc=$?
		else
			run_lane "$series" debian debian 64 >/dev/null || rc=$?
		fi
		[ "$rc" -ne 125 ] ||
			die "the run against $label produced no TAP output; see $lanes/$series-$label/console.log"
		guest_status[$label]=$rc
	done
	for label in ours debian; do
		outcomes "$lanes/$series-$label" 64 | LC_ALL=C sort \
			>"$lanes/$series-$label.outcomes"
	done

	echo "Tests whose outcome differs on $series (ours: $ours; in-tree: Debian's module)"
	echo
	printf '| %-70s | %-4s | %-7s | %s |\n' test ours in-tree reason
	printf '|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..72})" ------ --------- ----------------------------
	while read -r test a b; do
		[ "$a" = "$b" ] && continue
		why=$(improvement "$test")
		differing[${test##*.}]=1
		if [ -z "$why" ] || [ "$a" != pass ]; then
			why="UNEXPECTED${why:+ ($why)}"
			unexpected=1
		fi
		printf '| %-70s | %-4s | %-7s | %s |\n' "$test" "$a" "$b" "$why"
	done < <(LC_ALL=C join -a1 -a2 -e missing -o 0,1.2,2.2 \
		"$lanes/$series-ours.outcomes" "$lanes/$series-debian.outcomes")
	for name in "${!expected_why[@]}"; do
		[ -n "${differing[$name]:-}" ] ||
			echo "note: $name has the same outcome with both drivers here, though the documentation lists it as differing"
	done
	echo
	echo "ours:    $(summarize "$lanes/$series-ours"/tap-*.txt | tail -n 1)"
	echo "in-tree: $(summarize "$lanes/$series-debian"/tap-*.txt | tail -n 1)"
	for label in ours debian; do
		[ "${guest_status[$label]}" -le 1 ] && continue
		echo "the guest run against $label failed with status ${guest_status[$label]}; see $lanes/$series-$label/console.log"
		[ "$label" = ours ] && unexpected=1
	done
	return "$unexpected"
}

# guest_run runs both builds inside the guest and keeps their TAP output
# in $GUEST_OUT.
guest_run() {
	local build status=0

	for build in $builds; do
		echo "== $build-bit build"
		"$top/build/selftests/$build/vtpm_proxy_test" 2>&1 |
			tee "$GUEST_OUT/tap-$build.txt" || status=1
	done
	return "$status"
}

main() {
	local series module label dir rc=0

	case "${1:-}" in
	-h | --help) usage; exit 0 ;;
	--guest-run) guest_run; return ;;
	--compare)
		[ $# -eq 3 ] || { usage >&2; exit 2; }
		check_series "$2"
		module=$(resolve_module "$2" "$3")
		[ "$module" != debian ] ||
			die "--compare needs our module, not debian"
		build_suite
		compare "$2" "$module"
		return
		;;
	esac
	[ $# -eq 2 ] || { usage >&2; exit 2; }
	series=$1
	check_guest_series "$series"
	module=$(resolve_module "$series" "$2")
	label=$(module_label "$module")
	dir=$top/build/selftest-lane/$series-$label
	build_suite

	run_lane "$series" "$module" "$label" || rc=$?
	[ "$rc" -eq 0 ] || exit "$rc"
	summarize "$dir"/tap-*.txt
	if grep -qE '^not ok ' "$dir"/tap-*.txt; then
		exit 1
	fi
}

main "$@"

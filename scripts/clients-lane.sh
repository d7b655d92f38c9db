#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Real clients, unchanged, against the vTPM proxy driver in a guest of
# each kernel series: the kernel's own tpm2 selftests, swtpm and
# tpm2-tools workflows, and the kernel's own users of a TPM chip (hwrng,
# trusted keys). One guest boot per part and series.
#
# Usage: scripts/clients-lane.sh [-m MODULE] [-p PART]... [SERIES]...
#   -m MODULE  ours (default: build it for each series), debian (Debian's
#              own module, the reference) or PATH.ko
#   -p PART    selftests, workflows or kernel-users (repeatable; default
#              all three); each runs scripts/clients/PART.sh in the guest
#              (workflows runs swtpm-workflows.sh)
#   SERIES     6.1 and/or 6.12; default $SERIES, else both
#
# Prints one TAP line per check and ends with "N passed, N failed"
# (", N skipped" when some were skipped), as scripts/check.sh expects.
# Each part's guest output (console.log, dmesg.txt, results.txt and the
# selftests' logs) is kept in $CHECK_OUT/SERIES-MODULE/PART, or under
# build/clients/ without CHECK_OUT. Lines starting with "# time" give
# each guest run's duration.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib/deps.sh"
. "$top/scripts/lib/kernel-series.sh"
. "$top/scripts/lib/lane.sh"

usage() {
	sed -n '8,22p' "$0" | sed 's/^# \{0,1\}//'
}

module=ours
parts=()
while getopts 'm:p:h' opt; do
	case "$opt" in
	m) module=$OPTARG ;;
	p) parts+=("$OPTARG") ;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ ${#parts[@]} -gt 0 ] || parts=(selftests workflows kernel-users)
series_list=("$@")
[ ${#series_list[@]} -gt 0 ] || read -r -a series_list <<<"${SERIES:-$KERNEL_SERIES_ALL}"

for series in "${series_list[@]}"; do
	check_series "$series"
done
case "$module" in
ours | debian) ;;
*.ko) [ -f "$module" ] || die "module file $module not found" ;;
*) die "invalid -m '$module': expected ours, debian or PATH.ko" ;;
esac

# part_script PART prints the in-guest script of PART and its guest time
# limit in seconds. The limits leave room for a loaded host: on an idle
# one the parts take about a fifth of them.
part_script() {
	case "$1" in
	selftests) echo "scripts/clients/selftests.sh 600" ;;
	workflows) echo "scripts/clients/swtpm-workflows.sh 1200" ;;
	kernel-users) echo "scripts/clients/kernel-users.sh 300" ;;
	*) die "invalid part '$1': expected selftests, workflows or kernel-users" ;;
	esac
}
for part in "${parts[@]}"; do
	part_script "$part" >/dev/null
done

# The guest runs the host's programs, so they are installed here.
need_packages swtpm swtpm-tools tpm2-tools python3 kmod procps
if [[ " ${parts[*]} " == *" selftests "* ]]; then
	"$top/scripts/extract-linux-source.sh" 'tools/testing/selftests/tpm2/*' ||
		die "extracting the tpm2 selftests from linux-source-6.12 failed"
fi

outtop=${CHECK_OUT:-$top/build/clients}

# run_part SERIES KO LABEL PART boots a guest, runs PART in it and turns
# its results into lane results.
run_part() {
	local series=$1 ko=$2 label=$3 part=$4 script limit out status start
	local line results=0

	read -r script limit < <(part_script "$part")
	out=$outtop/$series-$(basename "$module" .ko)/$part
	rm -rf "$out"
	mkdir -p "$out"

	start=$(date +%s)
	"$top/scripts/run-in-guest.sh" -s "$series" -m "$ko" -t "$limit" \
		-o "$out" -e "CLIENTS_LABEL=$label" -- "$script" >"$out/run.log" 2>&1
	status=$?
	echo "# time $series $part: $(($(date +%s) - start)) s (guest run with module $module)"

	while IFS= read -r line; do
		case "$line" in
		"ok - "*) lane_ok "${line#ok - }" ;;
		"not ok - "*) lane_not_ok "${line#not ok - }" ;;
		"skip - "*)
			# "skip - LABEL: BEHAVIOUR: REASON"
			line=${line#skip - }
			lane_skip "${line%: *}" "${line##*: }"
			;;
		"#"*) echo "$line"; continue ;;
		*) continue ;;
		esac
		results=$((results + 1))
	done < <(cat "$out/results.txt" 2>/dev/null)

	# 124 to 126: timeout, module not loaded or not the one asked for,
	# kernel log problem (see scripts/run-in-guest.sh).
	if [ "$status" -ge 124 ] && [ "$status" -le 126 ]; then
		lane_not_ok "$label: $part guest run finishes in time with a clean kernel log"
		tail -n 15 "$out/run.log" | sed 's/^/#   /'
	else
		lane_ok "$label: $part guest run finishes in time with a clean kernel log"
	fi
	if [ "$results" -gt 0 ]; then
		lane_ok "$label: $part reports its results"
	else
		lane_not_ok "$label: $part reports its results"
		tail -n 15 "$out/run.log" | sed 's/^/#   /'
	fi
	if [ "$lane_failed" -gt 0 ] && [ "$module" != debian ]; then
		echo "# guest output in $out; to compare with Debian's driver: scripts/clients-lane.sh -m debian -p $part $series"
	fi
}

for series in "${series_list[@]}"; do
	label=$series
	ko=$module
	case "$module" in
	ours)
		if ! ko=$("$top/scripts/build-module.sh" "$series"); then
			lane_not_ok "$series: our module builds"
			continue
		fi
		;;
	debian) label="$series Debian's module" ;;
	esac
	for part in "${parts[@]}"; do
		run_part "$series" "$ko" "$label" "$part"
	done
done
lane_finish

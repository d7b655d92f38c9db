#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Lane "bench": a tiny pass of the benchmark (scripts/bench.sh --tiny) in
# a guest of each kernel series in SERIES runs both modules to the end and
# reports a number for every metric and a verdict for every target. Speed
# itself is never asserted: the numbers are for `make bench` to compare.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib/lane.sh"

# Metrics of table.tsv that must have a number for our module and
# Debian's; METRIC.STAT as in its first column.
expected=()
for placement in _1cpu ''; do
	for metric in rtt_tpm_trivial rtt_tpmrm_trivial rtt_tpm_swtpm \
		rtt_tpmrm_swtpm; do
		for stat in p50 p90 p99; do
			expected+=("$metric$placement.$stat")
		done
	done
	for metric in create_ready close_gone; do
		expected+=("$metric$placement.p50" "$metric$placement.p99")
	done
done
for metric in scale_answered scale_ready_all scale_teardown \
	scale_mem_available scale_slab scale_kernel_stack tput_1 tput_4 \
	tput_16; do
	expected+=("$metric.median")
done
expected+=(registration_failures.sum)

is_number() {
	[[ "$1" =~ ^-?[0-9]+(\.[0-9]+)?$ ]]
}

# check_table TSV prints the expected metrics without a number for both
# modules (and for the pipe floor, where the metric has one).
check_table() {
	local tsv=$1 id ours debian pipe rest

	for id in "${expected[@]}"; do
		# Columns: id, label, ours, debian, pipe floor, ratios.
		IFS=$'\t' read -r _ _ ours debian pipe rest < <(
			awk -F'\t' -v id="$id" '$1 == id' "$tsv")
		if ! is_number "${ours:-}" || ! is_number "${debian:-}" ||
			{ [ "${pipe:--}" != - ] && ! is_number "$pipe"; }; then
			echo "$id (ours '${ours:-}', debian '${debian:-}', pipe '${pipe:-}')"
		fi
	done
}

for series in $SERIES; do
	out=$CHECK_OUT/$series
	"$top/scripts/bench.sh" --tiny -o "$CHECK_OUT" "$series"
	lane_result $? "$series: tiny benchmark pass ran both modules in a guest with a clean kernel log"

	missing=$(check_table "$out/table.tsv" 2>/dev/null)
	[ -s "$out/table.tsv" ] && [ -z "$missing" ]
	lane_result $? "$series: benchmark table has numbers for both modules in every metric"
	if [ -n "$missing" ]; then
		while read -r line; do
			echo "# no number: $line"
		done <<<"$missing"
	fi

	# Seven targets per placement (one vCPU, any vCPU) and the growth.
	verdicts=$(grep -cE '^(PASS|MISS)'$'\t' "$out/targets.tsv" 2>/dev/null)
	[ "${verdicts:-0}" -ge 15 ] &&
		! grep -qE $'\tn/a$' "$out/targets.tsv"
	lane_result $? "$series: benchmark evaluated every target with a measured ratio"

	[ -s "$out/rtt-tpm.png" ] && [ -s "$out/rtt-tpmrm.png" ]
	lane_result $? "$series: benchmark drew the round-trip distributions"
done
lane_finish

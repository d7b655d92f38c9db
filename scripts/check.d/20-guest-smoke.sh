#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Lane "guest-smoke": in a guest of each kernel series in SERIES with our
# module loaded, swtpm creates a TPM 2.0 and a TPM 1.2 device and a
# command goes through each (scripts/smoke-in-guest.sh).
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib/deps.sh"
. "$top/scripts/lib/lane.sh"

# The guest runs the host's programs, so they are installed here.
need_packages swtpm tpm2-tools

for series in $SERIES; do
	if ! ko=$("$top/scripts/build-module.sh" "$series"); then
		lane_not_ok "$series: guest smoke test (our module does not build)"
		continue
	fi

	out=$CHECK_OUT/$series
	"$top/scripts/run-in-guest.sh" -s "$series" -m "$ko" -t 180 -o "$out" \
		-- scripts/smoke-in-guest.sh
	status=$?

	results=0
	while read -r line; do
		case "$line" in
		"ok "*) lane_ok "$series: ${line#ok * - }" ;;
		"not ok "*) lane_not_ok "$series: ${line#not ok * - }" ;;
		*) continue ;;
		esac
		results=$((results + 1))
	done < <(cat "$out/smoke.tap" 2>/dev/null)

	# 124 to 126: timeout, module not loaded or not ours, kernel log
	# problem (see scripts/run-in-guest.sh).
	[ "$status" -lt 124 ] || [ "$status" -gt 126 ]
	lane_result $? "$series: guest run with our module finished in time with a clean kernel log"
	[ "$results" -gt 0 ]
	lane_result $? "$series: guest smoke test reported its results"
done
lane_finish

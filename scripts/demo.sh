#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the driver, boot a guest of each Debian kernel series with it
# loaded, and run scripts/demo-in-guest.sh there: swtpm serves a TPM 2.0
# and a TPM 1.2 through the driver while tpm2-tools and the kernel use
# them. This is `make demo`.
#
# Usage: scripts/demo.sh [-m MODULE] [SERIES]...
#   SERIES   6.1 and/or 6.12 (default: both)
#   -m       ours (default: build and load ours), debian (load Debian's
#            module of the same name, for comparison) or PATH.ko
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib/deps.sh"
. "$top/scripts/lib/kernel-series.sh"

module=ours
while getopts 'm:' opt; do
	case "$opt" in
	m) module=$OPTARG ;;
	*) echo "usage: $0 [-m ours|debian|PATH.ko] [6.1|6.12]..." >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -gt 0 ] || set -- $KERNEL_SERIES_ALL
for series in "$@"; do
	check_series "$series"
done

# The guest runs the host's programs, so they are installed here.
need_packages swtpm tpm2-tools

failed=()
for series in "$@"; do
	info "demo on the $series series"
	if "$top/scripts/run-in-guest.sh" -s "$series" -m "$module" -t 300 \
		-- scripts/demo-in-guest.sh; then
		info "demo on $series passed"
	else
		failed+=("$series")
	fi
done

if [ ${#failed[@]} -gt 0 ]; then
	die "demo failed on: ${failed[*]}"
fi
info "demo passed on: $*"

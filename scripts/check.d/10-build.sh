#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Lane "build": the driver builds out of tree for each kernel series in
# SERIES with W=1 and sparse, without a single warning.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
. "$top/scripts/lib/lane.sh"

for series in $SERIES; do
	if ko=$("$top/scripts/build-module.sh" "$series"); then
		lane_ok "build for $series without warnings (W=1, sparse): ${ko#"$top"/}"
	else
		lane_not_ok "build for $series without warnings (W=1, sparse)"
	fi
done
lane_finish

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Lane "mutants": the selftests must fail on copies of our driver with a
# deliberate bug in them (scripts/mutation-lane.sh). One kernel series,
# the first of SERIES, is enough: the mutants differ from our driver in
# code that both series build the same way.
set -uo pipefail

top=$(cd "$(dirname "$0")/../.." && pwd)
read -r series _ <<<"$SERIES"
exec "$top/scripts/mutation-lane.sh" "$series"

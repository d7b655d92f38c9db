#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Lane "style": checkpatch --strict and kernel-doc -Wall on our C sources,
# and the W=1 and sparse builds for each kernel series in SERIES
# (scripts/check-style.sh).
exec "$(dirname "$0")/../check-style.sh"

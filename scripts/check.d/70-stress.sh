#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Lane "stress": the stress, fault and fuzz lanes at the CI size, a
# twentieth of `make stress`, in a guest of each kernel series in SERIES;
# SEED repeats the random choices of an earlier run (scripts/stress.sh).
exec "$(dirname "$0")/../stress.sh" -z ci

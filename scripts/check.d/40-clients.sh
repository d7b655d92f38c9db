#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Lane "clients": the kernel's tpm2 selftests, swtpm and tpm2-tools
# workflows and the kernel's hwrng, unchanged, against our module in a
# guest of each kernel series in SERIES (scripts/clients-lane.sh).
exec "$(dirname "$0")/../clients-lane.sh"

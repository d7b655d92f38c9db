#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Lane "dkms": the Debian package tpm-vtpm-proxy-dkms builds and installs
# on this machine, and DKMS builds the module for each kernel. In a guest
# of each series in SERIES, modprobe loads that build and swtpm works
# through it. Purging the package brings Debian's module back
# (scripts/dkms-lane.sh).
exec "$(dirname "$0")/../dkms-lane.sh"

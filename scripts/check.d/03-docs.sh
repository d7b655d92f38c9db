#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Lane "docs": the translations keep the structure of their originals,
# the driver page names every errno of the driver, its C example
# compiles, and Sphinx builds the pages without a warning
# (scripts/check-docs.sh).
exec "$(dirname "$0")/../check-docs.sh"

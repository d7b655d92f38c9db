#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Extract files that we build and test with from Debian's linux-source-6.12
# tarball into build/linux-source-6.12/, which git ignores. Nothing taken
# from the kernel tree is ever committed.
#
# Usage: scripts/extract-linux-source.sh PATH...
#   PATH is relative to the top of the kernel tree and may contain shell
#   wildcards, for example tools/testing/selftests/kselftest_harness.h.
#   A path already extracted is not extracted again.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib/deps.sh"

dest=$top/build/linux-source-6.12
tarball=/usr/src/linux-source-6.12.tar.xz

[ $# -gt 0 ] || { echo "usage: $0 PATH..." >&2; exit 2; }

need_packages linux-source-6.12 xz-utils
[ -f "$tarball" ] || die "$tarball not found after installing linux-source-6.12"

missing=()
for path in "$@"; do
	# compgen matches wildcards against what is already extracted.
	if ! compgen -G "$dest/$path" >/dev/null; then
		missing+=("linux-source-6.12/$path")
	fi
done
[ ${#missing[@]} -gt 0 ] || exit 0

mkdir -p "$dest"
info "extracting ${#missing[@]} path(s) from $tarball"
tar -xJf "$tarball" -C "$dest" --strip-components=1 --wildcards "${missing[@]}" ||
	die "could not extract ${missing[*]} from $tarball"

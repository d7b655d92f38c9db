#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the kernel's style gates on our C sources.
#
# Usage: scripts/check-style.sh [FILE...]
#   Without FILE, runs every gate:
#     checkpatch  `checkpatch.pl --strict --no-tree -f` on every C file and
#                 header in git (git ls-files '*.c' '*.h'): 0 errors,
#                 0 warnings and 0 checks per file
#     kernel-doc  `kernel-doc -none -Wall` on the uapi header, the driver
#                 and its compatibility header prints nothing
#     build       the module builds against each Debian kernel series
#                 with W=1 and sparse (C=2) without a warning, through
#                 scripts/build-module.sh SERIES
#   With FILE arguments, runs checkpatch and kernel-doc on those files
#   only, which may be anywhere (a scratch copy, for example).
#   SERIES in the environment lists the kernel series to build for
#   (default "6.1 6.12"), as in scripts/check.sh.
#
# checkpatch.pl, spelling.txt, const_structs.checkpatch and kernel-doc are
# extracted from Debian's linux-source-6.12 into build/. Prints one line
# per file and gate, "ok - ..." or "not ok - ..." followed by the
# offending output, and ends with "N passed, N failed". Exits 1 when a
# gate failed.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib/deps.sh"

linux=$top/build/linux-source-6.12
work=$top/build/check-style
kernel_doc_files=(include/uapi/linux/vtpm_proxy.h
	drivers/char/tpm/tpm_vtpm_proxy.c
	drivers/char/tpm/vtpm_proxy_compat.h)
read -r -a series_all <<<"${SERIES:-6.1 6.12}"

need_packages perl git
"$top/scripts/extract-linux-source.sh" scripts/checkpatch.pl \
	scripts/spelling.txt scripts/const_structs.checkpatch \
	scripts/kernel-doc ||
	die "could not extract the kernel's style scripts from linux-source-6.12"
mkdir -p "$work"

passed=0
failed=0

# result OK|FAIL NAME LOG prints the result line of one gate and, for a
# failure, the gate's output indented below it.
result() {
	if [ "$1" = OK ]; then
		echo "ok - $2"
		passed=$((passed + 1))
	else
		echo "not ok - $2"
		sed 's/^/    /' "$3"
		failed=$((failed + 1))
	fi
}

log_path() {
	printf '%s/%s.log' "$work" "$(printf '%s' "$1" | tr -c 'A-Za-z0-9.-' _)"
}

# run_checkpatch FILE passes when checkpatch reports no error, no warning
# and no check. --no-tree finds spelling.txt and const_structs.checkpatch
# next to checkpatch.pl.
run_checkpatch() {
	local file=$1 log total

	log=$(log_path "checkpatch $file")
	perl "$linux/scripts/checkpatch.pl" --strict --no-tree --show-types \
		--color=never -f "$file" >"$log" 2>&1
	total=$(grep -E '^total: ' "$log")
	if [[ "$total" == "total: 0 errors, 0 warnings, 0 checks, "* ]]; then
		result OK "checkpatch $file" "$log"
	else
		[ -n "$total" ] || echo "checkpatch printed no total line" >>"$log"
		result FAIL "checkpatch $file" "$log"
	fi
}

# run_kernel_doc FILE passes when kernel-doc has nothing to report.
run_kernel_doc() {
	local file=$1 log

	log=$(log_path "kernel-doc $file")
	if perl "$linux/scripts/kernel-doc" -none -Wall "$file" >"$log" 2>&1 &&
		[ ! -s "$log" ]; then
		result OK "kernel-doc -Wall $file" "$log"
	else
		result FAIL "kernel-doc -Wall $file" "$log"
	fi
}

# build_series SERIES passes when scripts/build-module.sh, which builds with
# W=1 and C=2 and fails on any warning, succeeds.
build_series() {
	local series=$1 log

	log=$(log_path "build $series")
	if [ ! -x "$top/scripts/build-module.sh" ]; then
		echo "scripts/build-module.sh not found or not executable" >"$log"
		result FAIL "W=1 C=2 build against the $series series" "$log"
	elif "$top/scripts/build-module.sh" "$series" >"$log" 2>&1; then
		result OK "W=1 C=2 build against the $series series" "$log"
	else
		result FAIL "W=1 C=2 build against the $series series" "$log"
	fi
}

cd "$top" || die "cannot enter $top"

if [ $# -gt 0 ]; then
	for file in "$@"; do
		[ -f "$file" ] || die "$file not found"
		run_checkpatch "$file"
		run_kernel_doc "$file"
	done
else
	mapfile -t sources < <(git ls-files '*.c' '*.h')
	[ ${#sources[@]} -gt 0 ] || die "git ls-files found no C files in $top"
	for file in "${sources[@]}"; do
		run_checkpatch "$file"
	done
	for file in "${kernel_doc_files[@]}"; do
		run_kernel_doc "$file"
	done
	for series in "${series_all[@]}"; do
		build_series "$series"
	done
fi

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Check the documentation under Documentation/ and build it.
#
# Usage: scripts/check-docs.sh [CHECK...]
#   Runs the named checks, or all of them:
#     structure  each translation (a page with an ":Original:" line under
#                Documentation/translations/) has the same sections,
#                tables, lists, kernel-doc directives and literal blocks,
#                in the same order, as its original
#     errno      the driver page and its translations name every errno
#                value that the driver and its uapi header return
#     example    the C example on the driver page compiles against our
#                uapi header with -Wall -Wextra -Werror
#     htmldocs   Sphinx builds the HTML pages into build/htmldocs with
#                warnings as errors (what `make htmldocs` runs)
#
# Prints one line per check, "ok - ..." or "not ok - ..." followed by
# the failure's output, and ends with "N passed, N failed". Exits 1 when
# a check failed. Installs python3-sphinx, python3-docutils, perl and gcc
# when they are missing, and extracts scripts/kernel-doc from
# linux-source-6.12 into build/.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib/deps.sh"

all_checks=(structure errno example htmldocs)
if [ $# -gt 0 ]; then
	checks=("$@")
	for check in "${checks[@]}"; do
		case " ${all_checks[*]} " in
		*" $check "*) ;;
		*) die "unknown check '$check'; expected some of: ${all_checks[*]}" ;;
		esac
	done
else
	checks=("${all_checks[@]}")
fi

# Debian's python3 has the python3-* packages; a python3 earlier in PATH
# (pyenv, a virtualenv) may not.
python=/usr/bin/python3
doccheck=$top/Documentation/sphinx/doccheck.py
driver_doc=Documentation/security/tpm/tpm_vtpm_proxy.rst
driver_sources=(drivers/char/tpm/tpm_vtpm_proxy.c
	include/uapi/linux/vtpm_proxy.h)
out=$top/build/htmldocs
work=$top/build/check-docs

need_packages python3 python3-docutils python3-sphinx perl gcc libc6-dev
"$top/scripts/extract-linux-source.sh" scripts/kernel-doc ||
	die "could not extract scripts/kernel-doc from linux-source-6.12"
mkdir -p "$work"

passed=0
failed=0

# result OK|FAIL NAME LOG prints the result line of one check and, for a
# failure, the check's output indented below it.
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

# run NAME COMMAND... runs one check with its output in a log file.
run() {
	local name=$1 log

	shift
	log=$work/$(printf '%s' "$name" | tr -c 'A-Za-z0-9.-' _).log
	if (cd "$top" && "$@") >"$log" 2>&1; then
		result OK "$name" "$log"
	else
		result FAIL "$name" "$log"
	fi
}

# translations prints the translated pages, relative to the top.
translations() {
	(cd "$top" && grep -rl --include='*.rst' '^:Original:' \
		Documentation/translations | sort)
}

check_structure() {
	local page original

	for page in $(translations); do
		if ! original=$("$python" "$doccheck" original "$top/$page" \
			2>"$work/original.log"); then
			result FAIL "structure $page" "$work/original.log"
			continue
		fi
		run "structure $page matches $original" \
			"$python" "$doccheck" structure "$original" "$page"
	done
}

check_errno() {
	local page

	for page in "$driver_doc" $(translations | grep '/tpm_vtpm_proxy\.rst$'); do
		run "errno values of the driver named in $page" \
			"$python" "$doccheck" errno "$page" "${driver_sources[@]}"
	done
}

compile_example() {
	"$python" "$doccheck" example "$driver_doc" "$work/example.c" &&
		gcc -std=gnu11 -Wall -Wextra -Werror -I"$top/include/uapi" \
			-o "$work/example" "$work/example.c"
}

build_htmldocs() {
	rm -rf "$out"
	"$python" -m sphinx -W --keep-going -q -b html \
		-d "$work/doctrees" "$top/Documentation" "$out" &&
		echo "HTML pages in $out"
}

for check in "${checks[@]}"; do
	case "$check" in
	structure) check_structure ;;
	errno) check_errno ;;
	example) run "C example in $driver_doc compiles" compile_example ;;
	htmldocs) run "sphinx-build -W into build/htmldocs" build_htmldocs ;;
	esac
done

echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]

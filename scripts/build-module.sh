#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build tpm_vtpm_proxy.ko out of tree for one Debian kernel series, with
# extra compiler warnings (W=1) and sparse (C=2), and fail on any warning.
#
# Usage: scripts/build-module.sh SERIES
#   SERIES is 6.1, 6.12 or debug. For debug, scripts/build-debug-kernel.sh
#   builds the module (W=1, no sparse) against the debug kernel, and this
#   script prints its path. Otherwise the sources are copied into
#   build/module/KREL/ (KREL is the kernel release, for example
#   6.1.0-NN-amd64) in the same tree shape as the repository, so that the
#   Kbuild file finds include/uapi at $(src)/../../../include/uapi. On
#   success the path of the .ko is the only line on stdout.
#
# A build whose sources and headers have not changed since the last
# warning-free build is not repeated.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib/deps.sh"
. "$top/scripts/lib/kernel-series.sh"

[ $# -eq 1 ] || { echo "usage: $0 6.1|6.12|debug" >&2; exit 2; }
series=$1
check_guest_series "$series"
if [ "$series" = debug ]; then
	debug_kernel_paths
	echo "$DEBUG_KERNEL_OOT_KO"
	exit 0
fi

need_packages "$(series_headers_package "$series")" sparse make gcc
krel=$(series_release "$series" build)
[ -n "$krel" ] ||
	die "no kernel headers of the $series series in /lib/modules/*/build after installing $(series_headers_package "$series")"
kdir=/lib/modules/$krel/build

srcdir=$top/drivers/char/tpm
sources=("$srcdir"/*.c "$srcdir"/*.h "$srcdir"/Kbuild)
uapi=$top/include/uapi/linux/vtpm_proxy.h
[ -f "$srcdir/tpm_vtpm_proxy.c" ] ||
	die "$srcdir/tpm_vtpm_proxy.c not found: the driver source is missing"

out=$top/build/module/$krel
moddir=$out/drivers/char/tpm
ko=$moddir/tpm_vtpm_proxy.ko
log=$out.log
stamp=$out/.clean-build
# Debian's kernels are built without CONFIG_MODULE_SRCVERSION_ALL, so a
# module without MODULE_VERSION gets no srcversion. Setting it here makes
# modpost add one, by which tests tell our module from Debian's.
make_args=(-C "$kdir" M="$moddir" CONFIG_TCG_VTPM_PROXY=m
	CONFIG_MODULE_SRCVERSION_ALL=y W=1 C=2 modules)

mkdir -p "$top/build/module"
# Two builds for the same kernel (make demo and make check at once) must
# not write into the same folder together.
exec 9>"$out.lock"
flock 9

# fingerprint prints what a build depends on: the sources, the kernel
# headers and the make command line.
fingerprint() {
	local f

	for f in "${sources[@]}" "$uapi"; do
		[ -e "$f" ] || continue
		printf '%s ' "${f#"$top"/}"
		sha256sum <"$f"
	done
	printf 'kernel %s\n' "$(stat -c %Y "$kdir/Makefile" "$kdir/Module.symvers" | tr '\n' ' ')"
	printf 'make %s\n' "${make_args[*]}"
}

if [ -f "$stamp" ] && [ -f "$ko" ] && fingerprint | cmp -s - "$stamp"; then
	info "tpm_vtpm_proxy.ko for $krel is up to date"
	echo "$ko"
	exit 0
fi

# Always build from scratch: a file that make skips would not print its
# warnings again. The build runs in a staging folder that replaces $out
# only when it succeeded, so a .ko that a caller got earlier stays whole
# until the next successful build.
stage=$top/build/module/.$krel.staging
rm -rf "$stage"
mkdir -p "$stage/drivers/char/tpm" "$stage/include/uapi/linux"
for f in "${sources[@]}"; do
	[ -e "$f" ] && cp "$f" "$stage/drivers/char/tpm/"
done
cp "$uapi" "$stage/include/uapi/linux/"
make_args=("${make_args[@]/#M=*/M=$stage/drivers/char/tpm}")

info "building tpm_vtpm_proxy.ko for $krel (W=1, sparse)"
if ! make "${make_args[@]}" >"$log" 2>&1; then
	cat "$log" >&2
	die "build for $krel failed; full output in $log"
fi

# Compiler warnings and sparse reports read "file:line:col: warning: ..."
# or "... error: ...". modpost prints "WARNING: modpost: ...".
if grep -Ei 'warning:|error:|sparse:' "$log" >&2; then
	die "build for $krel produced the warnings above; full output in $log"
fi
[ -f "$stage/drivers/char/tpm/tpm_vtpm_proxy.ko" ] ||
	die "build for $krel made no tpm_vtpm_proxy.ko; full output in $log"

make_args=("${make_args[@]/#M=*/M=$moddir}")
fingerprint >"$stage/.clean-build"
rm -rf "$out"
mv "$stage" "$out"
echo "$ko"

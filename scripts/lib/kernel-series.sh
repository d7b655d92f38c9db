# SPDX-License-Identifier: GPL-2.0
#
# The Debian kernel series we build and test for, and where their files
# are. Source it after scripts/lib/deps.sh; do not run it.
#
# A series is "6.1" (bookworm's own kernel) or "6.12" (the bookworm
# backport). The exact kernel release, for example 6.1.0-NN-amd64, changes
# whenever the archive updates, so it is looked up in /boot and
# /lib/modules instead of being written down anywhere.

KERNEL_SERIES_ALL="6.1 6.12"

# check_series SERIES fails unless SERIES is one we support.
check_series() {
	case "$1" in
	6.1 | 6.12) ;;
	*) die "invalid kernel series '$1'; expected one of: $KERNEL_SERIES_ALL" ;;
	esac
}

# check_guest_series SERIES also accepts "debug", the debug kernel that
# scripts/build-debug-kernel.sh builds from linux-source-6.12, for the
# scripts that can boot it: run-in-guest.sh and the lanes built on it.
check_guest_series() {
	case "$1" in
	6.1 | 6.12 | debug) ;;
	*) die "invalid kernel series '$1'; expected one of: $KERNEL_SERIES_ALL debug" ;;
	esac
}

# debug_kernel_paths builds the debug kernel when it is missing or out of
# date and sets the DEBUG_KERNEL_* variables that
# scripts/build-debug-kernel.sh prints.
debug_kernel_paths() {
	local paths

	paths=$("$top/scripts/build-debug-kernel.sh") ||
		die "building the debug kernel failed"
	eval "$paths"
}

# series_image_package SERIES prints the Debian meta package that installs
# the newest kernel image of SERIES.
series_image_package() {
	case "$1" in
	6.1) echo linux-image-amd64 ;;
	6.12) echo linux-image-6.12-amd64 ;;
	esac
}

# series_headers_package SERIES prints the matching headers meta package.
series_headers_package() {
	case "$1" in
	6.1) echo linux-headers-amd64 ;;
	6.12) echo linux-headers-6.12-amd64 ;;
	esac
}

# series_release SERIES [boot|build] prints the newest kernel release of
# SERIES that has the files needed: "boot" needs the image in /boot and
# the modules in /lib/modules, "build" needs /lib/modules/KREL/build.
# Prints nothing when no release of the series is installed.
series_release() {
	local series=$1 need=${2:-boot} dir krel

	for dir in /lib/modules/"$series".*; do
		[ -d "$dir" ] || continue
		krel=${dir#/lib/modules/}
		# 6.1.* must not match a 6.12 release.
		case "$series:$krel" in
		6.1:6.1.[0-9]* | 6.12:6.12.[0-9]*) ;;
		*) continue ;;
		esac
		case "$need" in
		boot)
			[ -f "/boot/vmlinuz-$krel" ] &&
				[ -f "$dir/modules.dep" ] || continue
			;;
		build)
			[ -f "$dir/build/Makefile" ] || continue
			;;
		esac
		echo "$krel"
	done | sort -V | tail -n 1
}

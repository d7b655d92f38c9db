#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build the Debian package tpm-vtpm-proxy-dkms and install it on this
# machine, so that DKMS builds the module for every installed kernel with
# headers. Then check in a guest of each kernel series that modprobe
# loads the DKMS build and that swtpm and tpm2-tools work through it.
# Last, remove the package and check that modprobe loads Debian's own
# module again. No module is loaded on this machine itself.
#
# Usage: scripts/dkms-lane.sh [--deb-only] [SERIES]...
#   --deb-only  only build the package into build/deb/ and stop
#   SERIES      6.1 and/or 6.12 to boot; default $SERIES, else both
#
# Prints one TAP line per check and ends with "N passed, N failed", as
# scripts/check.sh expects. The package is built from a copy of the
# working tree in build/deb/tpm-vtpm-proxy-VERSION/, so the tree itself
# stays clean; the .deb lands in build/deb/. Guest output is kept in
# $CHECK_OUT (else build/dkms-lane/).
#
# While the package is installed, `modprobe tpm_vtpm_proxy` in any guest
# booted from this machine's root loads the DKMS build: do not run
# `run-in-guest.sh -m debian` at the same time. An exit trap removes the
# package on every exit, and a package left over by an earlier run that
# was killed is removed first.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib/deps.sh"
. "$top/scripts/lib/kernel-series.sh"
. "$top/scripts/lib/lane.sh"

package=tpm-vtpm-proxy-dkms
dkms_name=tpm-vtpm-proxy

deb_only=
if [ "${1:-}" = --deb-only ]; then
	deb_only=1
	shift
fi
series_list=("$@")
[ ${#series_list[@]} -gt 0 ] || read -r -a series_list <<<"${SERIES:-$KERNEL_SERIES_ALL}"
for series in "${series_list[@]}"; do
	check_series "$series"
done

version=$(sed -n 's/^PACKAGE_VERSION="\(.*\)"$/\1/p' "$top/dkms.conf")
[ -n "$version" ] || die "no PACKAGE_VERSION in $top/dkms.conf"
debdir=$top/build/deb
deb=$debdir/${package}_${version}_all.deb
out=${CHECK_OUT:-$top/build/dkms-lane}
mkdir -p "$out"

# build_deb builds the package from a copy of the working tree, leaving
# out build/ and .git.
build_deb() {
	local src=$debdir/$dkms_name-$version log=$out/dpkg-buildpackage.log

	need_packages dpkg-dev debhelper dh-dkms dkms
	rm -rf "$debdir"
	mkdir -p "$src"
	tar -C "$top" --exclude=./build --exclude=./.git -cf - . |
		tar -C "$src" -xf - ||
		die "copying the source tree to $src failed"

	info "building $package $version in $src"
	if ! (cd "$src" && dpkg-buildpackage -us -uc -b) >"$log" 2>&1; then
		tail -n 30 "$log" >&2
		return 1
	fi
	[ -f "$deb" ] || { echo "dpkg-buildpackage made no $deb" >&2; return 1; }
}

is_installed() {
	dpkg-query -W -f='${db:Status-Status}' "$package" 2>/dev/null |
		grep -qxv not-installed
}

# remove_package purges the package and with it every DKMS build.
remove_package() {
	is_installed || return 0
	info "removing $package"
	dpkg --purge "$package" >"$out/dpkg-purge.log" 2>&1 ||
		{ cat "$out/dpkg-purge.log" >&2; return 1; }
}

# show_make_logs prints DKMS's make.log of each kernel, for a failed build.
show_make_logs() {
	local log

	for log in /var/lib/dkms/"$dkms_name"/"$version"/*/*/log/make.log \
		/var/lib/dkms/"$dkms_name"/"$version"/build/make.log; do
		[ -f "$log" ] || continue
		printf '# ---- %s\n' "$log"
		sed 's/^/#   /' "$log"
	done
}

# guest_checks SERIES MODE boots a guest of SERIES without loading a
# module and runs scripts/clients/dkms-guest.sh MODE in it.
guest_checks() {
	local series=$1 mode=$2 dir=$out/$1-$2 status line results=0 start

	rm -rf "$dir"
	mkdir -p "$dir"
	start=$(date +%s)
	"$top/scripts/run-in-guest.sh" -s "$series" -m none -t 600 -o "$dir" \
		-e "CLIENTS_LABEL=$series $mode" -- scripts/clients/dkms-guest.sh "$mode" \
		>"$dir/run.log" 2>&1
	status=$?
	echo "# time $series $mode guest: $(($(date +%s) - start)) s"

	while IFS= read -r line; do
		case "$line" in
		"ok - "*) lane_ok "${line#ok - }" ;;
		"not ok - "*) lane_not_ok "${line#not ok - }" ;;
		"#"*) echo "$line"; continue ;;
		*) continue ;;
		esac
		results=$((results + 1))
	done < <(cat "$dir/results.txt" 2>/dev/null)

	if [ "$status" -ge 124 ] && [ "$status" -le 126 ] || [ "$results" = 0 ]; then
		lane_not_ok "$series $mode: guest run finishes in time with a clean kernel log and results"
		tail -n 15 "$dir/run.log" | sed 's/^/#   /'
	else
		lane_ok "$series $mode: guest run finishes in time with a clean kernel log and results"
	fi
}

start=$(date +%s)
if ! build_deb; then
	lane_not_ok "Debian package $package builds (log: $out/dpkg-buildpackage.log)"
	lane_finish
fi
lane_ok "Debian package $package builds: ${deb#"$top"/}"
echo "# time package build: $(($(date +%s) - start)) s"
[ -z "$deb_only" ] || lane_finish

# The guests need an image for each series; DKMS needs its headers.
need_packages dkms swtpm swtpm-tools tpm2-tools kmod qemu-system-x86
releases=()
for series in "${series_list[@]}"; do
	need_packages "$(series_image_package "$series")" \
		"$(series_headers_package "$series")"
	krel=$(series_release "$series" build)
	[ -n "$krel" ] && [ "$krel" = "$(series_release "$series" boot)" ] ||
		die "the $series series has no kernel with both its image and its headers ($(series_headers_package "$series")): DKMS cannot build for it"
	releases+=("$krel")
done

trap remove_package EXIT
remove_package || die "could not remove the $package left over by an earlier run"

start=$(date +%s)
info "installing $deb (DKMS builds the module for each kernel with headers)"
if ! dpkg -i "$deb" >"$out/dpkg-install.log" 2>&1; then
	lane_not_ok "$package installs and DKMS builds the module"
	sed 's/^/#   /' "$out/dpkg-install.log"
	show_make_logs
	lane_finish
fi
lane_ok "$package installs and DKMS builds the module"
echo "# time install and DKMS builds: $(($(date +%s) - start)) s"

status=$(dkms status -m "$dkms_name" -v "$version" 2>&1)
for krel in "${releases[@]}"; do
	# dkms 3 prints "NAME/VERSION, KREL, ARCH: installed".
	if grep -q "^$dkms_name/$version, $krel, [^:]*: installed" <<<"$status" &&
		compgen -G "/lib/modules/$krel/updates/dkms/tpm_vtpm_proxy.ko*" >/dev/null; then
		lane_ok "DKMS installs the module for $krel"
	else
		lane_not_ok "DKMS installs the module for $krel"
		sed 's/^/#   dkms status: /' <<<"$status"
		show_make_logs
	fi
done

for series in "${series_list[@]}"; do
	guest_checks "$series" dkms
done

if remove_package && ! is_installed; then
	lane_ok "$package purges cleanly"
else
	lane_not_ok "$package purges cleanly"
fi
left=$(dkms status -m "$dkms_name" 2>&1; ls /lib/modules/*/updates/dkms/tpm_vtpm_proxy.ko* 2>/dev/null)
if [ -z "$left" ]; then
	lane_ok "purging $package removes every DKMS build"
else
	lane_not_ok "purging $package removes every DKMS build"
	sed 's/^/#   /' <<<"$left"
fi

for series in "${series_list[@]}"; do
	guest_checks "$series" debian
done
lane_finish

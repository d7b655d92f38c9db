#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Build a small debug kernel from Debian's linux-source-6.12, with KASAN,
# lockdep, kmemleak, debugobjects and list debugging, for running the
# driver's tests in a QEMU guest under the kernel's sanitizers.
#
# Usage: scripts/build-debug-kernel.sh
#
# The configuration is tinyconfig with scripts/debug-kernel.config merged
# over it. Our driver replaces the kernel's own tpm_vtpm_proxy.c,
# vtpm_proxy_compat.h and uapi vtpm_proxy.h before the build, so the
# kernel's TPM Makefile builds OUR driver in tree as tpm_vtpm_proxy.ko.
# The driver is then also built out of tree against the result, with W=1,
# and any compiler or modpost warning fails the script.
#
# Everything goes to build/debug-kernel/HASH/, where HASH covers the final
# .config, the driver sources, the version of the source package and this
# script. A later run with the same inputs reuses that build. When any
# of them but the source package changed, the newest build of the same
# source is copied and rebuilt incrementally: Kbuild recompiles only what
# the changed files and options touch. A build with the same .config is
# preferred, as it only needs the driver recompiled.
#   HASH/linux/              the kernel tree, built; use it as KDIR
#   HASH/linux/arch/x86/boot/bzImage
#   HASH/linux/vmlinux       the same kernel uncompressed, which QEMU can
#                            boot through the PVH entry point
#   HASH/linux/drivers/char/tpm/tpm_vtpm_proxy.ko   in-tree build
#   HASH/oot/drivers/char/tpm/tpm_vtpm_proxy.ko     out-of-tree build
#   HASH/paths.env           the lines printed on stdout at the end
# build/debug-kernel/current is a symbolic link to the newest HASH.
#
# Stdout is only shell assignments, so that a caller can run
#   eval "$(scripts/build-debug-kernel.sh)"
# and get DEBUG_KERNEL_IMAGE, DEBUG_KERNEL_VMLINUX, DEBUG_KERNEL_RELEASE,
# DEBUG_KERNEL_KDIR, DEBUG_KERNEL_INTREE_KO and DEBUG_KERNEL_OOT_KO.
# Progress goes to stderr.
#
# The compiler runs niced with two jobs, because the machines we build
# on are small and shared.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib/deps.sh"

tarball=/usr/src/linux-source-6.12.tar.xz
fragment=$top/scripts/debug-kernel.config
script=$top/scripts/build-debug-kernel.sh
cache=$top/build/debug-kernel
jobs=2
# Finished builds kept besides the newest one; each takes about 2 GB.
keep_builds=2

driver_dir=drivers/char/tpm
driver_sources=("$driver_dir/tpm_vtpm_proxy.c" "$driver_dir/vtpm_proxy_compat.h")
uapi_header=include/uapi/linux/vtpm_proxy.h
intree_ko=$driver_dir/tpm_vtpm_proxy.ko
image=arch/x86/boot/bzImage

[ $# -eq 0 ] || { echo "usage: $0" >&2; exit 2; }

for f in "${driver_sources[@]}" "$uapi_header" "$driver_dir/Kbuild"; do
	[ -f "$top/$f" ] || die "$top/$f not found: the driver sources are missing"
done
[ -f "$fragment" ] || die "$fragment not found"

need_packages linux-source-6.12 xz-utils build-essential bc bison flex \
	libelf-dev libssl-dev cpio
[ -f "$tarball" ] || die "$tarball not found after installing linux-source-6.12"

mkdir -p "$cache/configs"
# One build at a time: a second caller waits and then reuses the result.
exec 9>"$cache/.lock"
if ! flock -n 9; then
	info "waiting for another debug kernel build to finish"
	flock 9
fi

# The tarball's version, as a line that changes whenever it does.
source_version="linux-source-6.12 $(dpkg-query -W -f='${Version}' \
	linux-source-6.12) $(stat -c '%s %Y' "$tarball")"

short_hash() {
	sha256sum | cut -c1-16
}

# Print what the generated .config depends on.
config_inputs() {
	printf 'source %s\n' "$source_version"
	printf 'fragment %s' "$(sha256sum <"$fragment")"
	printf 'script %s' "$(sha256sum <"$script")"
	printf 'gcc %s\n' "$(gcc --version | head -n 1)"
	printf 'ld %s\n' "$(ld --version | head -n 1)"
}

# Print what a build depends on, given the final .config.
build_inputs() {
	local config=$1 f

	printf 'source %s\n' "$source_version"
	printf 'config %s' "$(sha256sum <"$config")"
	printf 'script %s' "$(sha256sum <"$script")"
	for f in "${driver_sources[@]}" "$uapi_header"; do
		printf '%s %s' "$f" "$(sha256sum <"$snapshot/$f")"
	done
}

# Print the "CONFIG_X value" pairs that the fragment requests, with the
# value "n" for "# CONFIG_X is not set".
requested_options() {
	sed -nE -e 's/^(CONFIG_[A-Za-z0-9_]+)=(.*)$/\1 \2/p' \
		-e 's/^# (CONFIG_[A-Za-z0-9_]+) is not set$/\1 n/p' "$fragment"
}

# Fail, naming every option, when the .config lacks a requested value.
check_config() {
	local config=$1 symbol requested got wrong=()

	while read -r symbol requested; do
		got=$(sed -n "s/^$symbol=//p" "$config")
		if [ "$requested" = n ]; then
			[ -z "$got" ] || wrong+=("$symbol=$got (requested n)")
		elif [ "$got" != "$requested" ]; then
			wrong+=("$symbol=${got:-n} (requested $requested)")
		fi
	done < <(requested_options)

	[ ${#wrong[@]} -eq 0 ] && return 0
	printf '  %s\n' "${wrong[@]}" >&2
	die "${#wrong[@]} option(s) of $fragment are not in the final .config (listed above): a dependency is off, or another option selects them"
}

# Copy our driver over the kernel's own files in the tree TREE.
install_driver() {
	local tree=$1 f

	for f in "${driver_sources[@]}" "$uapi_header"; do
		cp "$snapshot/$f" "$tree/$f"
	done
}

# Run make in the tree TREE, niced, logging to LOG.
run_make() {
	local tree=$1 log=$2

	shift 2
	if ! nice -n 10 make -C "$tree" -j"$jobs" "$@" >>"$log" 2>&1; then
		tail -n 40 "$log" >&2
		die "make $* failed in $tree; full output in $log"
	fi
}

# Fill TREE with the kernel source and our driver: a copy of the finished
# build SEED when one is given, else a fresh extraction of the tarball.
populate_tree() {
	local tree=$1 seed=$2 start

	rm -rf "$tree"
	mkdir -p "$(dirname "$tree")"
	start=$(date +%s)
	if [ -n "$seed" ]; then
		info "copying debug kernel $(basename "$seed") to start from"
		cp -a "$seed/linux" "$tree"
		copy_secs=$(($(date +%s) - start))
	else
		info "extracting $tarball"
		mkdir -p "$tree"
		nice -n 10 tar -xJf "$tarball" -C "$tree" --strip-components=1 ||
			die "could not extract $tarball into $tree"
		extract_secs=$(($(date +%s) - start))
	fi
	install_driver "$tree"
}

# Configure TREE as tinyconfig with the fragment merged over it, and
# check that every requested option is in the result.
configure_tree() {
	local tree=$1 log=$2 start

	info "configuring: tinyconfig + $(basename "$fragment")"
	start=$(date +%s)
	: >"$log"
	run_make "$tree" "$log" tinyconfig
	(cd "$tree" && scripts/kconfig/merge_config.sh -m .config "$fragment") \
		>>"$log" 2>&1 ||
		die "merging $fragment failed; full output in $log"
	run_make "$tree" "$log" olddefconfig
	check_config "$tree/.config"
	configure_secs=$(($(date +%s) - start))
}

# Print the finished builds of the same source package, newest first.
list_builds() {
	local dir

	for dir in $(ls -1dt "$cache"/*/.done 2>/dev/null); do
		dir=${dir%/.done}
		is_build_dir "$dir" || continue
		[ "$(cat "$dir/source-version" 2>/dev/null)" = "$source_version" ] ||
			continue
		echo "$dir"
	done
}

# Print the newest finished build whose .config equals CONFIG.
find_build_with_config() {
	local config=$1 dir

	for dir in $(list_builds); do
		if cmp -s "$dir/linux/.config" "$config"; then
			echo "$dir"
			return 0
		fi
	done
}

# Succeed when DIR is named like a build, HASH.
is_build_dir() {
	[ ! -L "$1" ] && [[ "$(basename "$1")" =~ ^[0-9a-f]{16}$ ]]
}

# Build our driver out of tree against the kernel tree KDIR, into OUT.
build_out_of_tree() {
	local kdir=$1 out=$2 log=$3 moddir

	moddir=$out/$driver_dir
	rm -rf "$out"
	mkdir -p "$moddir" "$out/include/uapi/linux"
	cp "$snapshot/$driver_dir"/* "$moddir/"
	cp "$snapshot/$uapi_header" "$out/$uapi_header"

	info "building tpm_vtpm_proxy.ko out of tree (W=1)"
	: >"$log"
	run_make "$kdir" "$log" M="$moddir" CONFIG_TCG_VTPM_PROXY=m W=1 modules
	# Compiler warnings read "file:line:col: warning: ...", and modpost
	# prints "WARNING: modpost: ...".
	if grep -Ei 'warning:|error:' "$log" >&2; then
		die "the out-of-tree build produced the warnings above; full output in $log"
	fi
	[ -f "$moddir/tpm_vtpm_proxy.ko" ] ||
		die "the out-of-tree build made no $moddir/tpm_vtpm_proxy.ko; full output in $log"
}

# Print the results as shell assignments, for eval by the caller.
print_paths() {
	local out=$1

	printf 'DEBUG_KERNEL_IMAGE=%q\n' "$out/linux/$image"
	printf 'DEBUG_KERNEL_VMLINUX=%q\n' "$out/linux/vmlinux"
	printf 'DEBUG_KERNEL_RELEASE=%q\n' \
		"$(cat "$out/linux/include/config/kernel.release")"
	printf 'DEBUG_KERNEL_KDIR=%q\n' "$out/linux"
	printf 'DEBUG_KERNEL_INTREE_KO=%q\n' "$out/linux/$intree_ko"
	printf 'DEBUG_KERNEL_OOT_KO=%q\n' "$out/oot/$driver_dir/tpm_vtpm_proxy.ko"
}

# Point build/debug-kernel/current at HASH.
set_current() {
	ln -sfn "$1" "$cache/current.new"
	mv -T "$cache/current.new" "$cache/current"
}

# Remove the finished builds other than KEEP beyond the newest
# keep_builds, and every unfinished build other than KEEP.
prune_builds() {
	local keep=$1 dir count=0

	for dir in $(ls -1dt "$cache"/*/.done 2>/dev/null); do
		dir=${dir%/.done}
		is_build_dir "$dir" && [ "$(basename "$dir")" != "$keep" ] ||
			continue
		count=$((count + 1))
		[ $count -gt $keep_builds ] || continue
		info "removing old debug kernel build $(basename "$dir")"
		rm -rf "$dir"
	done
	for dir in "$cache"/*/; do
		dir=${dir%/}
		is_build_dir "$dir" && [ ! -f "$dir/.done" ] &&
			[ "$(basename "$dir")" != "$keep" ] || continue
		info "removing unfinished debug kernel build $(basename "$dir")"
		rm -rf "$dir"
	done
}

# Print the results of the finished build HASH and point
# build/debug-kernel/current at it.
finish() {
	set_current "$1"
	cat "$cache/$1/paths.env"
}

# reuse_build HASH prints the results of a finished build and exits.
reuse_build() {
	info "reusing debug kernel $1"
	rm -rf "$staging"
	finish "$1"
	exit 0
}

# The driver as it is now: the build uses this copy only, so that an edit
# during the build cannot differ from what the build's hash names.
snapshot=$(mktemp -d)
trap 'rm -rf "$snapshot"' EXIT
mkdir -p "$snapshot/$driver_dir" "$snapshot/$(dirname "$uapi_header")"
cp "$top/$driver_dir"/*.c "$top/$driver_dir"/*.h "$top/$driver_dir/Kbuild" \
	"$snapshot/$driver_dir/"
cp "$top/$uapi_header" "$snapshot/$uapi_header"

staging=$cache/staging
extract_secs=0
copy_secs=0
configure_secs=0
# A staging tree is only ever used by the run that made it.
rm -rf "$staging"

# Step 1: with the .config of these inputs known from an earlier run,
# reuse a build of it, or copy the newest build with the same .config, so
# that Kbuild recompiles only our driver.
config_key=$(config_inputs | short_hash)
config=$cache/configs/$config_key.config
seed=
if [ -f "$config" ]; then
	hash=$(build_inputs "$config" | short_hash)
	[ ! -f "$cache/$hash/.done" ] || reuse_build "$hash"
	seed=$(find_build_with_config "$config")
fi

# Step 2: a tree to build in. Without a build of the same .config, make
# the .config in a copy of the newest build of the same source package,
# or in a fresh extraction when there is none. Kbuild then recompiles
# only what the changed options touch.
if [ -n "$seed" ]; then
	out=$cache/$hash
	rm -rf "$out"
	populate_tree "$out/linux" "$seed"
else
	populate_tree "$staging/linux" "$(list_builds | head -n 1)"
	configure_tree "$staging/linux" "$staging/configure.log"
	if [ -f "$config" ] && ! cmp -s "$staging/linux/.config" "$config"; then
		info "the .config made now differs from the one cached in $config; replacing it"
	fi
	cp "$staging/linux/.config" "$config"
	hash=$(build_inputs "$config" | short_hash)
	[ ! -f "$cache/$hash/.done" ] || reuse_build "$hash"
	out=$cache/$hash
	rm -rf "$out"
	mkdir -p "$out"
	mv "$staging/linux" "$out/linux"
	mv "$staging/configure.log" "$out/configure.log"
	rm -rf "$staging"
fi
printf '%s\n' "$source_version" >"$out/source-version"

# Step 3: the kernel, with our driver as its tpm_vtpm_proxy.ko.
info "building debug kernel $hash (make -j$jobs, niced; log in $out/build.log)"
start=$(date +%s)
: >"$out/build.log"
run_make "$out/linux" "$out/build.log" all
compile_secs=$(($(date +%s) - start))
[ -f "$out/linux/$image" ] || die "make made no $out/linux/$image"
[ -f "$out/linux/$intree_ko" ] ||
	die "make made no $out/linux/$intree_ko: is CONFIG_TCG_VTPM_PROXY=m in $config?"
if grep -E "^$driver_dir/[^:]*:[0-9]+:[0-9]+: warning:" "$out/build.log" >&2; then
	die "the in-tree build of the driver produced the warnings above; full output in $out/build.log"
fi

# Step 4: the same driver as an out-of-tree module against this kernel.
build_out_of_tree "$out/linux" "$out/oot" "$out/oot.log"

print_paths "$out" >"$out/paths.env"
times="extract $extract_secs s, copy $copy_secs s, configure $configure_secs s, compile $compile_secs s"
echo "$times" >"$out/times"
info "debug kernel $hash built: $times"
touch "$out/.done"
prune_builds "$hash"
finish "$hash"

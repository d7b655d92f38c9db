#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Benchmark our tpm_vtpm_proxy against Debian's in one guest boot. Run as
# root inside a test guest by scripts/bench.sh (through
# scripts/run-in-guest.sh), with our module loaded or no module at all.
#
# The modules take turns: ours, debian, ours, debian, or with
# BENCH_PASSES=1 only ours, debian. Each turn loads the module with
# insmod (our .ko, or Debian's from the kernel's tree), checks that the kernel runs the one wanted and runs `vtpm_bench run`,
# which also measures the pipe floor. Then `rmmod tpm_vtpm_proxy` unloads
# it. At the end, `vtpm_bench report` compares them.
#
# Environment:
#   GUEST_OUT       output folder (set by run-in-guest.sh): meta.txt,
#                   samples.csv and the report files go there
#   VTPM_MODULE     path of our tpm_vtpm_proxy.ko (set by run-in-guest.sh)
#   BENCH_PROGRAM   the vtpm_bench binary (default build/vtpm_bench/vtpm_bench)
#   BENCH_COMMANDS, BENCH_DEVICES, BENCH_SCALE, BENCH_SECONDS,
#   BENCH_PARALLEL, BENCH_ONLY
#                   passed to `vtpm_bench run` as --commands, --devices,
#                   --scale, --seconds, --parallel and --only when set
#   BENCH_PASSES    turns of each module, 1 or 2 (default 2)
#   BENCH_HOST_*    facts about the host, copied into meta.txt
#   BENCH_SOURCE    the commit our module was built from, for meta.txt
#
# Exits 1 when a module does not load or a run fails; a missed target is
# reported, not an error.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
out=${GUEST_OUT:?GUEST_OUT is not set: run this through scripts/run-in-guest.sh}
ours=${VTPM_MODULE:-}
program=${BENCH_PROGRAM:-$top/build/vtpm_bench/vtpm_bench}
sysmod=/sys/module/tpm_vtpm_proxy
case "${BENCH_PASSES:-2}" in
1) order=(ours debian) ;;
2) order=(ours debian ours debian) ;;
*) echo "bench-in-guest: error: invalid BENCH_PASSES '$BENCH_PASSES': expected 1 or 2" >&2; exit 1 ;;
esac

die() {
	printf 'bench-in-guest: error: %s\n' "$*" >&2
	exit 1
}

case "$ours" in
*.ko) [ -f "$ours" ] || die "our module $ours not found" ;;
*) die "VTPM_MODULE is '$ours', not the path of our .ko: run with -m PATH.ko or -m ours" ;;
esac
[ -x "$program" ] || die "$program not found: build it with make -C tools/vtpm_bench"

# check_loaded ours|debian fails unless the loaded tpm_vtpm_proxy is the
# one named: ours is out of tree (taint O) with the srcversion of our
# .ko, Debian's is not out of tree.
check_loaded() {
	local taint srcversion expected

	taint=$(cat "$sysmod/taint" 2>/dev/null) ||
		die "tpm_vtpm_proxy is not loaded"
	case "$1:$taint" in
	ours:*O*)
		srcversion=$(cat "$sysmod/srcversion" 2>/dev/null)
		expected=$(modinfo -F srcversion "$ours")
		if [ -z "$expected" ] || [ "$srcversion" != "$expected" ]; then
			die "loaded srcversion '$srcversion' differs from '$expected' of $ours"
		fi
		;;
	ours:*) die "module taint is '$taint', without O: the loaded module is not ours" ;;
	debian:*O*) die "module taint is '$taint': an out-of-tree module is loaded, not Debian's" ;;
	debian:*) ;;
	esac
	[ -c /dev/vtpmx ] || die "/dev/vtpmx is missing with the $1 module loaded"
}

# debian_module prints the path of Debian's tpm_vtpm_proxy, uncompressed
# into /tmp if needed. The path is fixed instead of found by modprobe,
# because the guest shares /lib/modules with the host, where a DKMS
# install of our module may take precedence while this runs.
debian_module() {
	local base

	base=/lib/modules/$(uname -r)/kernel/drivers/char/tpm/tpm_vtpm_proxy.ko

	if [ -f "$base" ]; then
		echo "$base"
	elif [ -f "$base.xz" ]; then
		xz -dc "$base.xz" >/tmp/tpm_vtpm_proxy.ko && echo /tmp/tpm_vtpm_proxy.ko
	elif [ -f "$base.zst" ]; then
		zstd -q -dc "$base.zst" >/tmp/tpm_vtpm_proxy.ko && echo /tmp/tpm_vtpm_proxy.ko
	else
		return 1
	fi
}

load() {
	local path

	case "$1" in
	ours) insmod "$ours" || die "insmod $ours failed" ;;
	debian)
		path=$(debian_module) ||
			die "Debian's tpm_vtpm_proxy.ko not found below /lib/modules/$(uname -r)/kernel"
		insmod "$path" || die "insmod $path (Debian's module) failed"
		;;
	esac
	check_loaded "$1"
}

# unload removes tpm_vtpm_proxy; a device that is still going away may
# hold it for a moment.
unload() {
	local tries=50

	while [ -d "$sysmod" ]; do
		rmmod tpm_vtpm_proxy 2>/dev/null && return 0
		tries=$((tries - 1))
		[ "$tries" -gt 0 ] || die "rmmod tpm_vtpm_proxy failed: $(rmmod tpm_vtpm_proxy 2>&1)"
		sleep 0.1
	done
}

run_args=()
[ -z "${BENCH_COMMANDS:-}" ] || run_args+=(--commands "$BENCH_COMMANDS")
[ -z "${BENCH_DEVICES:-}" ] || run_args+=(--devices "$BENCH_DEVICES")
[ -z "${BENCH_SCALE:-}" ] || run_args+=(--scale "$BENCH_SCALE")
[ -z "${BENCH_SECONDS:-}" ] || run_args+=(--seconds "$BENCH_SECONDS")
[ -z "${BENCH_PARALLEL:-}" ] || run_args+=(--parallel "$BENCH_PARALLEL")
[ -z "${BENCH_ONLY:-}" ] || run_args+=(--only "$BENCH_ONLY")

write_meta() {
	local name

	printf 'series=%s\n' "${GUEST_SERIES:-unknown}"
	printf 'guest kernel=%s\n' "$(uname -r)"
	printf 'guest vCPUs=%s\n' "$(nproc)"
	printf 'guest CPU=%s\n' "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
	printf 'guest memory=%s\n' "$(awk '/^MemTotal:/ { printf "%d MiB", $2 / 1024 }' /proc/meminfo)"
	for name in "${!BENCH_HOST_@}"; do
		printf 'host %s=%s\n' "$(tr '[:upper:]_' '[:lower:] ' <<<"${name#BENCH_HOST_}")" "${!name}"
	done
	printf 'order=%s\n' "${order[*]}"
	printf 'our module=srcversion %s, built from %s\n' \
		"$(modinfo -F srcversion "$ours")" "${BENCH_SOURCE:-this repository}"
	printf "Debian's module=%s\n" "$(ls /lib/modules/"$(uname -r)"/kernel/drivers/char/tpm/tpm_vtpm_proxy.ko*)"
	printf 'swtpm=%s\n' "$(swtpm --version 2>&1 | head -n 1)"
	printf 'run options=%s\n' "${run_args[*]:-defaults}"
}

rm -f "$out/samples.csv" "$out/results.md" "$out/table.tsv" "$out/targets.tsv"
rm -rf "$out/plot"
write_meta >"$out/meta.txt"

# run-in-guest.sh may have loaded our module already.
if [ -d "$sysmod" ]; then
	check_loaded ours
	loaded=ours
else
	loaded=
fi

slot=0
for driver in "${order[@]}"; do
	slot=$((slot + 1))
	if [ "$loaded" != "$driver" ]; then
		unload
		load "$driver"
	fi
	loaded=$driver
	echo "bench-in-guest: run $slot of ${#order[@]}: $driver"
	"$program" run --driver "$driver" --pass $(((slot + 1) / 2)) \
		--slot "$slot" --out "$out" "${run_args[@]}" ||
		die "vtpm_bench run failed for $driver in run $slot"
done
unload

"$program" report "$out" || die "vtpm_bench report failed"

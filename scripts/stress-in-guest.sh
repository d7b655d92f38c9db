#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# The stress, fault and fuzz lanes of the vTPM proxy driver, run as root
# inside a test guest (scripts/run-in-guest.sh) with tpm_vtpm_proxy
# loaded. scripts/stress.sh starts it on the host; see there for sizes.
#
# Usage: scripts/stress-in-guest.sh
#   Environment:
#     STRESS_DIVISOR  divide the full size of every lane by this (1)
#     STRESS_LANES    lanes to run, in this order (cycles kill threads
#                     rmmod fuzz)
#     STRESS_LEFTOVERS  "each" (default) to check what a lane left
#                     behind after every lane, or "end" to check it
#                     once after the last lane; the kernel log is
#                     checked after every lane either way
#     SEED            seed of every lane's random choices (a fresh one
#                     when unset); the same seed repeats the same choices
#     VTPM_MODULE     the loaded module's .ko file (set by the runner);
#                     the rmmod lane loads it again after an unload
#     VTPM_STRESS     the vtpm_stress program (build/vtpm_stress/
#                     vtpm_stress of the repository)
#     GUEST_OUT       output folder shared with the host (set by the
#                     runner): results.tap gets every result line and
#                     kmsg.log the whole kernel log
#
# After each lane, its kernel log must contain no oops, BUG, WARNING,
# refcount or list corruption, KASAN, lockdep or hung-task report. Then
# come the checks of what the lane left behind (after the last lane only
# with STRESS_LEFTOVERS=end): the module has no reference, the next
# device is /dev/tpm0 and works, and kernel memory is back to its
# baseline. After the last lane, kmemleak (when the kernel has it) must
# find no leak from any lane.
#
# Every result is a line "ok - LANE: BEHAVIOUR" or "not ok - LANE:
# BEHAVIOUR". Each lane ends with "N passed, N failed", and the script
# with the totals. Exits 1 when a check failed. A lane that leaves
# a thread stuck in the kernel ends the run there, and the guest panics
# on an RCU stall, so that a kernel hang shows at once.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)

divisor=${STRESS_DIVISOR:-1}
leftovers=${STRESS_LEFTOVERS:-each}
lanes=${STRESS_LANES:-cycles kill threads rmmod fuzz}
program=${VTPM_STRESS:-$top/build/vtpm_stress/vtpm_stress}
out=${GUEST_OUT:-/tmp}
results=$out/results.tap
kmsg_log=$out/kmsg.log
kmemleak=/sys/kernel/debug/kmemleak
# Seconds without a line from vtpm_stress after which it counts as stuck.
silence_limit=600
page_kb=$(($(getconf PAGESIZE) / 1024))

# Full size of each lane: cycles, emulators killed, device lives.
declare -A full_size=([cycles]=10000 [kill]=1000 [threads]=2000
	[rmmod]=2000 [fuzz]=10000)

# Kernel log lines that fail a lane; the same reports fail the whole
# guest run in scripts/run-in-guest.sh.
. "$top/scripts/lib/kernel-log.sh"
bad_log=$KERNEL_LOG_PROBLEMS

# Memory tolerance, in kB, of kernel memory after a lane against the
# baseline taken after the warm-up, both measured after dropping the
# caches: Slab may grow by at most slab_tolerance_kb, and MemAvailable
# plus the per-CPU free lists shrink by at most available_tolerance_kb.
# In a TCG guest with 2 GB, after the lanes at the CI size, Slab was 60
# to 600 kB over the baseline, mostly vmap_area objects of freed kernel
# stacks (the kernel purges them lazily) and task structures freed after
# an RCU grace period, and MemAvailable with the per-CPU lists was
# within 200 kB of it. A device that is never freed holds more than
# 8 kB of slab (the TPM core's struct tpm_chip, the driver's state with
# its 4 kB buffer, and the sysfs nodes); even the buffer alone, leaked
# once per device life, exceeds both tolerances in every lane at full
# size and in the cycles and fuzz lanes at the CI size. Single leaks are
# found otherwise: a leaked chip keeps its number, so the next device is
# not /dev/tpm0, and kmemleak, on kernels that have it, reports any
# unreferenced object.
slab_tolerance_kb=1024
available_tolerance_kb=2048
# Under KASAN, MemAvailable falls without a leak, because the stack depot
# keeps every new allocation and free stack trace for the rest of the
# boot and the quarantine keeps freed objects. There only Slab is
# compared, after settle_memory empties the quarantine, and kmemleak
# finds the leaks.
kasan=

passed=0
failed=0
stuck=
lane_passed=0
lane_failed=0
: >"$results"

# result OK|FAIL LANE TEXT prints a result line and counts it.
result() {
	local line

	if [ "$1" = OK ]; then
		line="ok - $2: $3"
		lane_passed=$((lane_passed + 1))
	else
		line="not ok - $2: $3"
		lane_failed=$((lane_failed + 1))
	fi
	printf '%s\n' "$line" | tee -a "$results"
}

note() {
	printf '# %s\n' "$*"
}

# kmsg_mark TEXT writes a marker line into the kernel log.
kmsg_mark() {
	printf 'vtpm-stress: %s\n' "$*" >/dev/kmsg
}

# wait_logged TEXT waits until the kernel log follower saved a line with
# TEXT, so that everything before it is in $kmsg_log.
wait_logged() {
	local try

	for try in $(seq 100); do
		[ "$try" -gt 1 ] && sleep 0.1
		grep -qF "$1" "$kmsg_log" && return 0
	done
	return 1
}

# read_meminfo sets slab_kb, sunreclaim_kb, available_kb and pcp_kb.
# pcp_kb is the free memory in the page allocator's per-CPU lists, which
# MemAvailable leaves out: after a busy lane these lists can hold several
# MB per CPU, which no sysctl drains.
read_meminfo() {
	local key value _

	while read -r key value _; do
		case "$key" in
		Slab:) slab_kb=$value ;;
		SUnreclaim:) sunreclaim_kb=$value ;;
		MemAvailable:) available_kb=$value ;;
		esac
	done </proc/meminfo
	pcp_kb=$(awk -v page_kb="$page_kb" '
		$1 == "count:" { pages += $2 }
		END { print pages * page_kb }' /proc/zoneinfo)
}

# settle_memory drops the page, dentry and inode caches, so that what
# remains is memory in use, and waits for frees deferred past an RCU
# grace period.
settle_memory() {
	local shrink

	sync
	echo 3 >/proc/sys/vm/drop_caches
	sleep 2
	echo 3 >/proc/sys/vm/drop_caches
	# Kernels without CONFIG_COMPACTION (the debug kernel) lack the file.
	[ ! -e /proc/sys/vm/compact_memory ] || echo 1 >/proc/sys/vm/compact_memory
	# KASAN keeps freed objects in its quarantine, inside their slabs:
	# about 50 MB of Slab in the debug guest, which moves by a megabyte
	# without a leak. Shrinking a cache frees its quarantined objects
	# (kmem_cache_shrink() calls kasan_cache_shrink()), then its empty
	# slabs.
	if [ -n "$kasan" ]; then
		for shrink in /sys/kernel/slab/*/shrink; do
			echo 1 >"$shrink" 2>/dev/null
		done
	fi
	sleep 1
}

# run_program LANE ARG... runs vtpm_stress, passes its result lines on
# with the lane's name, and checks that it finished. A program that gave
# up because a thread of it is stuck in the kernel may never exit: its
# line "# giving up: ..." ends the wait, and sets stuck. So does silence
# for silence_limit seconds (the lanes report progress every minute).
run_program() {
	local lane=$1 line status fifo pid given_up='' out_fd last_line=$SECONDS

	shift
	fifo=$(mktemp -u /tmp/vtpm-stress.XXXXXX)
	mkfifo "$fifo"
	"$program" "$@" >"$fifo" 2>&1 &
	pid=$!
	exec {out_fd}<"$fifo"
	rm -f "$fifo"
	while :; do
		if IFS= read -r -t 5 -u "$out_fd" line; then
			last_line=$SECONDS
			case "$line" in
			"ok - "*) result OK "$lane" "${line#ok - }" ;;
			"not ok - "*) result FAIL "$lane" "${line#not ok - }" ;;
			"# giving up: "*) given_up=$SECONDS; printf '%s\n' "$line" ;;
			*) printf '%s\n' "$line" ;;
			esac
		elif [ $? -le 128 ]; then
			break
		elif [ -n "$given_up" ] && [ $((SECONDS - given_up)) -ge 30 ]; then
			break
		elif [ $((SECONDS - last_line)) -ge "$silence_limit" ]; then
			result FAIL "$lane" "vtpm_stress $1 keeps making progress (no output for $silence_limit s)"
			break
		fi
	done
	exec {out_fd}<&-

	if kill -0 "$pid" 2>/dev/null &&
		{ [ -n "$given_up" ] || [ $((SECONDS - last_line)) -ge "$silence_limit" ]; }; then
		result FAIL "$lane" "vtpm_stress $1 exits (a thread of it is stuck in the kernel)"
		# The stacks of the blocked tasks go into the kernel log.
		echo w >/proc/sysrq-trigger
		stuck=1
		return
	fi
	wait "$pid"
	status=$?
	# 0: every check passed, 1: a check failed; anything else means
	# that the program did not get to report.
	if [ "$status" = 0 ] || [ "$status" = 1 ]; then
		result OK "$lane" "vtpm_stress $1 ran to its end"
	else
		result FAIL "$lane" "vtpm_stress $1 ran to its end (exit status $status)"
	fi
}

# check_kernel_log LANE checks the lane's part of the kernel log.
check_kernel_log() {
	local lane=$1 problems

	kmsg_mark "end of lane $lane"
	if ! wait_logged "vtpm-stress: end of lane $lane"; then
		result FAIL "$lane" "the kernel log of the lane is clean (the log follower stopped)"
		return
	fi
	problems=$(sed -n "/vtpm-stress: begin of lane $lane\$/,/vtpm-stress: end of lane $lane\$/p" \
		"$kmsg_log" | grep -E "$bad_log")
	if [ -z "$problems" ]; then
		result OK "$lane" "the kernel log of the lane is clean"
	else
		result FAIL "$lane" "the kernel log of the lane is clean"
		printf '%s\n' "$problems" | head -n 40 | sed 's/^/#   /'
	fi
}

# check_kmemleak scans for leaks after the last lane, when the kernel
# has kmemleak. A scan reports an object only when its contents did not
# change since the previous scan, and a new object counts as changed, so
# a leak shows in the second scan after it at the earliest. kmemleak also
# skips objects younger than 5 s, hence the wait between the two scans.
# One check after all lanes costs two scans. A pair after each lane
# would cost ten, and a scan takes about 12 s under KASAN and TCG.
check_kmemleak() {
	local lane=lanes start report

	[ -w "$kmemleak" ] || return 0
	start=$SECONDS
	echo scan >"$kmemleak"
	[ $((SECONDS - start)) -ge 6 ] || sleep 6
	echo scan >"$kmemleak"
	note "kmemleak: two scans in $((SECONDS - start)) s"
	report=$(cat "$kmemleak")
	if [ -z "$report" ]; then
		result OK "$lane" "kmemleak reports no leak after all lanes"
	else
		result FAIL "$lane" "kmemleak reports no leak after all lanes"
		printf '%s\n' "$report" | head -n 60 | sed 's/^/#   /'
	fi
}

check_module_refcnt() {
	local lane=$1 refcnt

	refcnt=$(cat /sys/module/tpm_vtpm_proxy/refcnt 2>/dev/null)
	if [ "$refcnt" = 0 ]; then
		result OK "$lane" "no server fd or /dev/vtpmx is left open (module refcnt 0)"
	else
		result FAIL "$lane" "no server fd or /dev/vtpmx is left open (module refcnt '$refcnt')"
	fi
}

check_memory() {
	local lane=$1 slab_delta available_delta text

	settle_memory
	read_meminfo
	slab_delta=$((slab_kb - base_slab_kb))
	available_delta=$((base_available_kb + base_pcp_kb - available_kb - pcp_kb))
	note "$lane: Slab $slab_kb kB ($slab_delta kB over the baseline), SUnreclaim $sunreclaim_kb kB ($((sunreclaim_kb - base_sunreclaim_kb))), MemAvailable $available_kb kB and $pcp_kb kB in per-CPU lists ($available_delta kB under the baseline)"
	text="kernel memory is back to its baseline (Slab within $slab_tolerance_kb kB, MemAvailable with per-CPU lists within $available_tolerance_kb kB)"
	if [ -n "$kasan" ]; then
		text="kernel memory is back to its baseline (Slab within $slab_tolerance_kb kB; MemAvailable is not compared under KASAN)"
		available_delta=0
	fi
	if [ "$slab_delta" -le "$slab_tolerance_kb" ] &&
		[ "$available_delta" -le "$available_tolerance_kb" ]; then
		result OK "$lane" "$text"
	else
		result FAIL "$lane" "$text: Slab +$slab_delta kB, MemAvailable -$available_delta kB"
	fi
}

# run_lane LANE runs one lane and the checks after it.
run_lane() {
	local lane=$1 count start args=()

	count=$(( ${full_size[$lane]} / divisor ))
	# The kill lane's first 8 cycles go through its 8 kill points.
	[ "$lane" != kill ] || [ "$count" -ge 8 ] || count=8
	[ "$count" -gt 0 ] || count=1
	args=(-n "$count" -s "$seed")
	[ "$lane" = rmmod ] && args+=(-m "$VTPM_MODULE")

	printf '=== lane %s: %d, seed %s\n' "$lane" "$count" "$seed"
	# stress.sh tells from these whether the guest died during a lane.
	printf '# begin lane %s\n' "$lane" >>"$results"
	lane_passed=0
	lane_failed=0
	start=$(date +%s)
	kmsg_mark "begin of lane $lane"
	run_program "$lane" "$lane" "${args[@]}"
	note "$lane: $(($(date +%s) - start)) s"

	check_kernel_log "$lane"
	# A stuck thread holds the driver: the other checks would hang or
	# fail for that reason alone.
	if [ -z "$stuck" ] && [ "$leftovers" = each ]; then
		check_leftovers "$lane"
	fi

	passed=$((passed + lane_passed))
	failed=$((failed + lane_failed))
	[ "$lane_failed" = 0 ] ||
		note "$lane failed with seed $seed; SEED=$seed repeats its choices"
	printf '%d passed, %d failed\n' "$lane_passed" "$lane_failed"
	printf '# end lane %s\n' "$lane" >>"$results"
}

# check_leftovers LABEL checks that the lanes before it left nothing
# behind: no module reference, no device (the next one is /dev/tpm0),
# and kernel memory at its baseline.
check_leftovers() {
	check_module_refcnt "$1"
	run_program "$1" probe
	check_memory "$1"
}

# warm_up fills the kernel's caches the lanes use, so that the memory
# baseline taken after it already contains them.
warm_up() {
	"$program" cycles -n 200 -s "$seed" >/dev/null
	"$program" kill -n 20 -s "$seed" >/dev/null
	"$program" threads -n 50 -s "$seed" >/dev/null
	"$program" fuzz -n 50 -s "$seed" >/dev/null
	settle_memory
	read_meminfo
	base_slab_kb=$slab_kb
	base_sunreclaim_kb=$sunreclaim_kb
	base_available_kb=$available_kb
	base_pcp_kb=$pcp_kb
	note "baseline after the warm-up: Slab $slab_kb kB, SUnreclaim $sunreclaim_kb kB, MemAvailable $available_kb kB, per-CPU lists $pcp_kb kB"
}

[ -x "$program" ] || { echo "error: $program not found; build it with make -C tools/vtpm_stress" >&2; exit 1; }
[ -c /dev/vtpmx ] || { echo "error: /dev/vtpmx not found: tpm_vtpm_proxy is not loaded" >&2; exit 1; }
[ -f "${VTPM_MODULE:-}" ] ||
	{ echo "error: VTPM_MODULE must name the loaded module's .ko file" >&2; exit 1; }
for lane in $lanes; do
	[ -n "${full_size[$lane]:-}" ] ||
		{ echo "error: unknown lane '$lane'; lanes: ${!full_size[*]}" >&2; exit 1; }
done
case "$leftovers" in
each | end) ;;
*) echo "error: invalid STRESS_LEFTOVERS '$leftovers': expected each or end" >&2; exit 1 ;;
esac
seed=${SEED:-$(od -An -N8 -tu8 /dev/urandom | tr -d ' ')}
note "seed $seed (SEED=$seed repeats every lane's choices)"

# The driver and the TPM core log a line for every failed registration
# and command; on the serial console that costs more time than the
# lanes themselves. The whole log still goes to $kmsg_log.
read -r console_level _ </proc/sys/kernel/printk
dmesg -n 1
# With the console that quiet, a kernel that stalls (a CPU spinning with
# interrupts off, say) would sit silent until the guest's time limit, its
# RCU stall report unseen. Panic on an RCU stall instead, and have the
# panic print the whole kernel log (panic_print bit 5) on the console.
echo 1 >/proc/sys/kernel/panic_on_rcu_stall
echo 32 >/proc/sys/kernel/panic_print
stdbuf -oL dmesg --follow >"$kmsg_log" 2>&1 &
follower=$!

if [ ! -e "$kmemleak" ] && [ -d /sys/kernel/debug ] &&
	! mountpoint -q /sys/kernel/debug; then
	mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
fi
if dmesg | grep -q 'KernelAddressSanitizer initialized'; then
	kasan=1
	note "KASAN is on: kernel memory checks compare Slab only"
fi
if [ -w "$kmemleak" ]; then
	# Forget what was found before the lanes: only their leaks count.
	echo clear >"$kmemleak"
	note "kmemleak is on: two scans follow the last lane"
fi

warm_up
not_run=
for lane in $lanes; do
	if [ -n "$stuck" ]; then
		not_run="$not_run $lane"
		continue
	fi
	run_lane "$lane"
done
[ -z "$not_run" ] ||
	note "lanes not run:$not_run (an earlier lane left a thread stuck in the kernel)"
# Like the other checks after a lane, these need the driver idle.
if [ -z "$stuck" ]; then
	lane_passed=0
	lane_failed=0
	[ "$leftovers" = each ] || check_leftovers lanes
	check_kmemleak
	passed=$((passed + lane_passed))
	failed=$((failed + lane_failed))
fi

kill "$follower" 2>/dev/null
wait "$follower" 2>/dev/null
dmesg -n "$console_level"
[ "$failed" = 0 ] || note "failed with seed $seed; SEED=$seed repeats every lane's choices"
printf '%d passed, %d failed\n' "$passed" "$failed"
[ "$failed" = 0 ]

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run a command as root inside a QEMU guest that boots a Debian kernel,
# with tpm_vtpm_proxy loaded, and fail if the guest kernel logs a problem.
#
# The guest's root file system is the host's /, read-only over 9p, with
# tmpfs on /tmp and /run, so every program installed on the host is there.
# The command runs in the repository with its output on the console
# (streamed here). Install what the command needs on the host first.
usage() {
	cat <<EOF
Usage: $0 [-s SERIES] [-m MODULE] [-t SECONDS] [-o DIR] [-e NAME=VALUE]...
       -- COMMAND [ARG]...

  -s SERIES      kernel to boot: Debian's 6.1 (default) or 6.12, or
                 debug, the debug kernel of scripts/build-debug-kernel.sh
                 (KASAN, lockdep, kmemleak), built first when it is
                 missing or out of date
  -m MODULE      tpm_vtpm_proxy to load before COMMAND:
                   ours     build ours for SERIES and load it (default)
                   PATH.ko  load this file with insmod
                   debian   load Debian's module with modprobe
                   in-tree  (debug only) load the debug kernel's in-tree
                            build of our driver
                   none     load nothing
  -t SECONDS     time limit of the guest run, boot included (default
                 120): the guest kills COMMAND 5 s before its clock
                 reaches it, and QEMU is killed if the guest is still
                 running 15 s after it
  -o DIR         output folder, writable from the guest at the same path
                 and kept afterwards (default: a temporary folder that is
                 removed when the run succeeds)
  -e NAME=VALUE  add a variable to COMMAND's environment (repeatable)

COMMAND also gets GUEST_OUT (the output folder), GUEST_SERIES,
GUEST_KERNEL_RELEASE and VTPM_MODULE. Afterwards the output folder holds
console.log (everything the guest printed) and dmesg.txt (the guest
kernel log).

Environment: NO_INSTALL=1 lists missing Debian packages instead of
installing them; GUEST_ACCEL=tcg|kvm skips the KVM probe;
GUEST_HUNG_TASK_SECS sets the guest's hung-task threshold (default 10).

Exit status: COMMAND's exit status, or
  124  the guest or COMMAND did not finish within the time limit
  125  the guest could not be set up or the module did not load, or the
       loaded module is not the one requested
  126  the guest kernel log reports an oops, BUG, WARNING, refcount or
       list corruption, KASAN, lockdep, kmemleak or a hung task
EOF
}
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib/deps.sh"
. "$top/scripts/lib/kernel-series.sh"
. "$top/scripts/lib/kernel-log.sh"

series=6.1
module=ours
timeout=120
outdir=
guest_env=()

while getopts 's:m:t:o:e:h' opt; do
	case "$opt" in
	s) series=$OPTARG ;;
	m) module=$OPTARG ;;
	t) timeout=$OPTARG ;;
	o) outdir=$OPTARG ;;
	e)
		[[ "$OPTARG" =~ ^[A-Za-z_][A-Za-z0-9_]*= ]] ||
			die "invalid -e '$OPTARG': expected NAME=VALUE"
		guest_env+=("$OPTARG")
		;;
	h) usage; exit 0 ;;
	*) usage >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
[ "${1:-}" = -- ] && shift
[ $# -gt 0 ] || { usage >&2; exit 2; }

check_guest_series "$series"
[[ "$timeout" =~ ^[1-9][0-9]*$ ]] ||
	die "invalid -t '$timeout': expected a whole number of seconds"
hung_task_secs=${GUEST_HUNG_TASK_SECS:-10}
[[ "$hung_task_secs" =~ ^[1-9][0-9]*$ ]] ||
	die "invalid GUEST_HUNG_TASK_SECS '$hung_task_secs': expected a whole number of seconds"

# The guest mounts tmpfs over /tmp and /run, so it cannot see the
# repository there.
case "$top/" in
/tmp/* | /run/*) die "the repository $top is under /tmp or /run, which the guest hides; move it elsewhere" ;;
esac
[[ "$top" =~ [[:space:]] ]] &&
	die "the repository path '$top' contains white space, which the kernel command line cannot carry"

# The module's origin is in-tree for the debug kernel's in-tree build of
# our driver: the guest then checks that it has no out-of-tree taint.
module_origin=out-of-tree
if [ "$series" = debug ]; then
	need_packages qemu-system-x86 busybox-static kmod
	debug_kernel_paths
	krel=$DEBUG_KERNEL_RELEASE
	case "$module" in
	ours) module=$DEBUG_KERNEL_OOT_KO ;;
	in-tree)
		module=$DEBUG_KERNEL_INTREE_KO
		module_origin=in-tree
		;;
	debian) die "-m debian needs a Debian kernel, not the debug kernel" ;;
	esac
else
	image_pkg=$(series_image_package "$series")
	headers_pkg=$(series_headers_package "$series")
	need_packages qemu-system-x86 busybox-static kmod xz-utils zstd \
		"$image_pkg" "$headers_pkg"

	krel=$(series_release "$series" boot)
	[ -n "$krel" ] ||
		die "no kernel of the $series series in /boot and /lib/modules after installing $image_pkg"
	[ "$module" != in-tree ] ||
		die "-m in-tree needs the debug kernel (-s debug)"
fi

case "$module" in
ours)
	module=$("$top/scripts/build-module.sh" "$series") ||
		die "building our module for $series failed"
	;;
debian | none) ;;
*.ko)
	[ -f "$module" ] || die "module file $module not found"
	module=$(realpath "$module")
	;;
*) die "invalid -m '$module': expected ours, PATH.ko, debian or none" ;;
esac

guestdir=$top/build/guest
mkdir -p "$guestdir/runs"

# build_initramfs prints the path of the initramfs for $krel, building
# it when it is missing or its inputs changed: busybox, our /init and
# the 9p and virtio modules in load order. The debug kernel has them
# built in.
build_initramfs() {
	local dir=$guestdir/$krel img stamp stage modules m name

	img=$dir/initramfs.cpio
	stamp=$dir/initramfs.inputs
	mkdir -p "$dir"

	modules=
	[ "$series" = debug ] ||
		modules=$(for m in virtio_pci 9pnet_virtio 9p; do
			modprobe -S "$krel" --show-depends "$m" ||
				die "modprobe -S $krel --show-depends $m failed"
		done | awk '$1 == "insmod" && !seen[$2]++ { print $2 }')

	exec 8>"$dir/initramfs.lock"
	flock 8
	if [ -f "$img" ] && [ -f "$stamp" ] &&
		{ sha256sum /bin/busybox "$top/scripts/lib/guest-init.sh"; echo "$modules"; } |
		cmp -s - "$stamp"; then
		exec 8>&-
		echo "$img"
		return
	fi

	info "building the guest initramfs for $krel"
	stage=$(mktemp -d "$dir/initramfs.XXXXXX")
	mkdir -p "$stage"/{bin,dev,proc,sys,newroot,lib/modules}
	cp /bin/busybox "$stage/bin/busybox"
	for name in sh mount umount mkdir insmod chroot sync poweroff sleep; do
		ln -s busybox "$stage/bin/$name"
	done
	mknod "$stage/dev/console" c 5 1
	cp "$top/scripts/lib/guest-init.sh" "$stage/init"
	chmod 755 "$stage/init"

	# busybox insmod reads only uncompressed modules.
	for m in $modules; do
		name=$(basename "$m")
		case "$name" in
		*.ko.xz) name=${name%.xz}; xz -dc "$m" >"$stage/lib/modules/$name" ;;
		*.ko.zst) name=${name%.zst}; zstd -q -dc "$m" >"$stage/lib/modules/$name" ;;
		*.ko) cp "$m" "$stage/lib/modules/" ;;
		*) die "unexpected module file $m" ;;
		esac
		echo "$name" >>"$stage/modules.order"
	done

	touch "$stage/modules.order"
	(cd "$stage" && find . | busybox cpio -o -H newc 2>/dev/null) >"$img.tmp"
	mv "$img.tmp" "$img"
	{ sha256sum /bin/busybox "$top/scripts/lib/guest-init.sh"; echo "$modules"; } >"$stamp"
	rm -rf "$stage"
	exec 8>&-
	echo "$img"
}

# extract_vmlinux prints the path of the uncompressed kernel of $krel,
# extracted from /boot/vmlinuz-$krel and cached in build/guest/$krel/.
# QEMU boots it through its PVH entry point, which skips the kernel's own
# decompression: under TCG that saves several seconds per boot. Prints
# the compressed image instead when no ELF kernel can be found in it.
extract_vmlinux() {
	local image=/boot/vmlinuz-$krel dir=$guestdir/$krel format offset

	if [ -f "$dir/vmlinux" ] && [ "$dir/vmlinux" -nt "$image" ]; then
		echo "$dir/vmlinux"
		return
	fi
	mkdir -p "$dir"
	# Look for xz and zstd stream headers in the bzImage and keep the
	# first stream that decompresses to an ELF file.
	for format in 'xz \xfd7zXZ\x00' 'zstd \x28\xb5\x2f\xfd'; do
		for offset in $(LC_ALL=C grep -obUaP "${format#* }" "$image" | cut -d: -f1); do
			tail -c +$((offset + 1)) "$image" |
				"${format%% *}" -dcq >"$dir/vmlinux.tmp.$$" 2>/dev/null || true
			if [ "$(head -c 4 "$dir/vmlinux.tmp.$$" | od -An -c | tr -d ' ')" = '177ELF' ]; then
				mv "$dir/vmlinux.tmp.$$" "$dir/vmlinux"
				echo "$dir/vmlinux"
				return
			fi
		done
	done
	rm -f "$dir/vmlinux.tmp.$$"
	info "no uncompressed kernel found in $image; booting it as it is"
	echo "$image"
}

# qemu_base prints the QEMU options shared by real runs and the KVM
# probe. There is no network device: the guest is offline.
qemu_base() {
	printf '%s\n' -nographic -nodefaults -no-user-config -serial stdio \
		-no-reboot -m 2G -kernel "$kernel" -initrd "$initramfs"
	# qboot starts faster than SeaBIOS and prints nothing.
	[ ! -f "$qboot" ] || printf '%s\n' -bios "$qboot"
}

# choose_accel prints kvm when /dev/kvm works for a short probe boot,
# else tcg. The result is cached per host kernel and QEMU binary.
choose_accel() {
	local cache key

	case "${GUEST_ACCEL:-}" in
	tcg | kvm) echo "$GUEST_ACCEL"; return ;;
	'') ;;
	*) die "invalid GUEST_ACCEL '$GUEST_ACCEL': expected tcg or kvm" ;;
	esac
	if ! { exec 7<>/dev/kvm; } 2>/dev/null; then
		echo tcg
		return
	fi
	exec 7>&-

	cache=$guestdir/accel
	key="$(uname -r) $(stat -c %Y "$(command -v qemu-system-x86_64)")"
	if [ -f "$cache" ] && [ "$(head -n 1 "$cache")" = "$key" ]; then
		tail -n 1 "$cache"
		return
	fi

	info "probing KVM with a short boot (result cached in $cache)"
	local accel=tcg
	if timeout -k 5 30 qemu-system-x86_64 $(qemu_base) -accel kvm -cpu host \
		-smp 1 -append "console=ttyS0 panic=-1 quiet guest_probe=1" \
		</dev/null 2>&1 | grep -q guest-probe-ok; then
		accel=kvm
	fi
	printf '%s\n%s\n' "$key" "$accel" >"$cache.tmp.$$"
	mv "$cache.tmp.$$" "$cache"
	echo "$accel"
}

initramfs=$(build_initramfs)
if [ "$series" = debug ]; then
	kernel=$DEBUG_KERNEL_VMLINUX
else
	kernel=$(extract_vmlinux)
fi
qboot=/usr/share/qemu/qboot.rom
accel=$(choose_accel)
case "$accel" in
kvm) cpu=host ;;
*) cpu=max ;;
esac

run=$(mktemp -d "$guestdir/runs/run.XXXXXX")
# The guest loads a copy, so that a rebuild during the run cannot change
# or remove the module under it.
guest_module=$module
case "$module" in
*.ko)
	guest_module=$run/$(basename "$module")
	cp "$module" "$guest_module"
	;;
esac
if [ -n "$outdir" ]; then
	mkdir -p "$outdir"
	out=$(realpath "$outdir")
else
	out=$run/out
	mkdir -p "$out"
fi
[[ "$out" =~ [[:space:]] ]] &&
	die "the output folder '$out' contains white space, which the kernel command line cannot carry"
rm -f "$out/.guest-status" "$out/dmesg.txt" "$out/console.log"

{
	printf 'guest_out=%q\n' "$out"
	printf 'guest_repo=%q\n' "$top"
	printf 'guest_module=%q\n' "$guest_module"
	printf 'guest_module_origin=%q\n' "$module_origin"
	printf 'guest_series=%q\nguest_krel=%q\n' "$series" "$krel"
	printf 'guest_timeout=%q\n' "$timeout"
	printf 'guest_hung_task_secs=%q\n' "$hung_task_secs"
	printf 'guest_env=('
	[ ${#guest_env[@]} -eq 0 ] || printf ' %q' "${guest_env[@]}"
	printf ' )\nguest_cmd=('
	printf ' %q' "$@"
	printf ' )\n'
} >"$run/control"

# send_sysrq KEY... presses SysRq+KEY on the guest's keyboard through
# the QEMU monitor.
send_sysrq() {
	local key

	for key in "$@"; do
		# Opened read-write, so that the write never waits for a
		# reader, even when QEMU has just exited.
		printf 'sendkey alt-sysrq-%s\n' "$key" 1<>"$run/monitor.in"
		sleep 1
	done
}

# stop_qemu makes the guest print its blocked tasks and CPU backtraces to
# the console, then kills QEMU.
stop_qemu() {
	printf '\nrun-in-guest: time limit reached, dumping the guest state\n'
	# 9: print everything to the console, w: blocked tasks, l: backtraces
	# of all CPUs.
	send_sysrq 9 w l
	sleep 3
	kill "$qemu_pid" 2>/dev/null || return 0
	sleep 2
	kill -KILL "$qemu_pid" 2>/dev/null || true
}

# quiet: only errors reach the console, so it carries mostly the command's
# output; dmesg.txt has the whole log. no_timer_check: a slow TCG guest
# can fail the kernel's timer interrupt check. sysrq_always_enabled: the
# host presses SysRq keys on a time out (stop_qemu).
cmdline="console=ttyS0 panic=-1 quiet no_timer_check sysrq_always_enabled"

info "booting $krel ($accel, module: $module, limit ${timeout}s): $*"
mkfifo "$run/monitor.in" "$run/monitor.out"
# The monitor writes into monitor.out; keep it drained.
cat 0<>"$run/monitor.out" >/dev/null &
monitor_reader=$!
# Console lines end in CR LF, and the firmware writes escape sequences.
exec 6> >(sed -u -e 's/\r$//' -e 's/\x1b\[[0-9;?]*[A-Za-z]//g' \
	-e 's/\x1bc//g' | tee "$out/console.log")
console_writer=$!

# The guest's clock starts after QEMU has loaded the kernel and runs
# behind when the host is busy, so the host waits longer than the guest.
host_limit=$((timeout + 15))
start=$(date +%s)
qemu-system-x86_64 $(qemu_base) -accel "$accel" -cpu "$cpu" -smp 2 \
	-chardev "pipe,id=monitor,path=$run/monitor" -mon chardev=monitor \
	-virtfs "local,path=/,mount_tag=hostroot,security_model=none,readonly=on,multidevs=remap" \
	-virtfs "local,path=$out,mount_tag=guestout,security_model=none,multidevs=remap" \
	-append "$cmdline guest_out=$out guest_stage2=$top/scripts/lib/guest-run.sh guest_control=$run/control" \
	</dev/null >&6 2>&1 &
qemu_pid=$!
exec 6>&-
trap 'kill "$qemu_pid" "$monitor_reader" 2>/dev/null' EXIT

timed_out=
while kill -0 "$qemu_pid" 2>/dev/null; do
	if [ $(($(date +%s) - start)) -ge "$host_limit" ]; then
		timed_out=1
		stop_qemu
		break
	fi
	sleep 0.2
done
qemu_rc=0
wait "$qemu_pid" || qemu_rc=$?
trap - EXIT
kill "$monitor_reader" 2>/dev/null
wait "$console_writer" 2>/dev/null || true
elapsed=$(($(date +%s) - start))

# finish STATUS MESSAGE prints MESSAGE, removes the temporary folder
# unless the run failed without -o, and exits with STATUS.
finish() {
	local rc=$1

	shift
	if [ "$rc" = 0 ]; then
		info "$* (${elapsed}s)"
	else
		printf 'run-in-guest: %s (%ss)\n' "$*" "$elapsed" >&2
	fi
	if [ -n "$outdir" ] || [ "$rc" = 0 ]; then
		rm -rf "$run"
	else
		printf 'run-in-guest: console.log and dmesg.txt kept in %s\n' "$out" >&2
	fi
	exit "$rc"
}

if [ -n "$timed_out" ]; then
	finish 124 "the guest did not finish within ${host_limit}s; QEMU was killed"
fi

status=$(cat "$out/.guest-status" 2>/dev/null || true)
rm -f "$out/.guest-status"

# Kernel log lines that fail the run whatever the exit status of the command.
bad=$KERNEL_LOG_PROBLEMS
if [ -s "$out/dmesg.txt" ]; then
	problems=$(grep -E "$bad" "$out/dmesg.txt" || true)
else
	# Without dmesg.txt (a panic, a crash of the guest), use the kernel
	# lines from the console: they start with a timestamp.
	problems=$(grep -E '^\[ *[0-9]+\.[0-9]+\]' "$out/console.log" |
		grep -E "$bad" || true)
fi
if [ -n "$problems" ]; then
	printf 'run-in-guest: the guest kernel log reports:\n%s\n' "$problems" >&2
	case "$status" in
	"exit "*) printf 'run-in-guest: the command exited with status %s\n' "${status#exit }" >&2 ;;
	esac
	finish 126 "guest kernel log problem"
fi

case "$status" in
"exit "*)
	rc=${status#exit }
	finish "$rc" "guest run finished, command exit status $rc"
	;;
timeout)
	finish 124 "the command did not finish within the time limit of ${timeout}s"
	;;
"error "*)
	finish 125 "guest setup failed: ${status#error }"
	;;
*)
	finish 125 "the guest stopped without reporting a result (QEMU exit status $qemu_rc)"
	;;
esac

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run the kernel's own TPM 2.0 tests (tools/testing/selftests/tpm2 of
# Linux 6.12) against a swtpm TPM 2.0 served through tpm_vtpm_proxy, the
# way their test_smoke.sh, test_space.sh and test_async.sh run them:
# `python3 -m unittest -v tpm2_tests.CLASS` in the tests' folder. Runs as
# root inside a test guest with the module loaded and no other TPM,
# because the tests open /dev/tpm0 and /dev/tpmrm0.
#
# scripts/clients-lane.sh extracts the tests into build/ on the host
# first. The guest mounts the host's root read-only, and the tests write
# their own logs (SmokeTest.log, ...) into the current folder. So they run
# from a copy in /tmp, and their logs are copied to $GUEST_OUT.
set -uo pipefail

. "$(dirname "$0")/lib.sh"

testdir=$clients_top/build/linux-source-6.12/tools/testing/selftests/tpm2
# Each test class and the number of tests it contains in Linux 6.12.
classes=(SmokeTest:9 SpaceTest:4 AsyncTest:2)

# run_class CLASS COUNT runs one test class and reports each test and
# whether all COUNT tests ran.
run_class() {
	local class=$1 count=$2 log=$GUEST_OUT/tpm2-$1.log line name result
	local ran

	(
		cd "$rundir" &&
			PYTHONDONTWRITEBYTECODE=1 timeout 600 \
				python3 -m unittest -v "tpm2_tests.$class"
	) >"$log" 2>&1
	cp "$rundir/$class.log" "$GUEST_OUT/tpm2-$class-debug.log" 2>/dev/null

	# unittest -v prints "test_x (tpm2_tests.CLASS.test_x) ... RESULT"
	# (Python 3.11) for each test, then "Ran N tests".
	while IFS= read -r line; do
		[[ "$line" =~ ^(test_[A-Za-z0-9_]+)\ \(tpm2_tests\.$class[.A-Za-z0-9_]*\)\ \.\.\.\ (.*)$ ]] ||
			continue
		name=${BASH_REMATCH[1]}
		result=${BASH_REMATCH[2]}
		case "$result" in
		ok) ok "tpm2 selftest $class.$name passes" ;;
		skipped*) skip "tpm2 selftest $class.$name" "$result" ;;
		*)
			not_ok "tpm2 selftest $class.$name passes" \
				"unittest reports '$result'; full output in $log"
			;;
		esac
	done <"$log"

	ran=$(sed -n 's/^Ran \([0-9]*\) tests\{0,1\} in .*/\1/p' "$log")
	if [ "$ran" = "$count" ] && grep -qx 'OK' "$log"; then
		ok "tpm2 selftest $class runs all $count tests"
	else
		not_ok_file "tpm2 selftest $class runs all $count tests" "$log"
	fi
}

if [ ! -f "$testdir/tpm2_tests.py" ]; then
	not_ok "tpm2 selftests are extracted" \
		"$testdir/tpm2_tests.py not found; run scripts/extract-linux-source.sh 'tools/testing/selftests/tpm2/*' on the host"
	exit 1
fi
rundir=$work/tpm2
mkdir -p "$rundir"
cp "$testdir/tpm2.py" "$testdir/tpm2_tests.py" "$rundir/"

if [ -n "$(tpm_nodes_left)" ]; then
	not_ok "guest has no TPM before the tests" $(tpm_nodes_left)
	exit 1
fi
if ! vtpm_start tpm 2 2>"$work/start.log"; then
	not_ok_file "swtpm TPM 2.0 registers /dev/tpm0 and /dev/tpmrm0" \
		"$work/start.log"
	exit 1
fi
if [ "$(vtpm_num tpm)" != 0 ]; then
	not_ok "swtpm TPM 2.0 registers /dev/tpm0 and /dev/tpmrm0" \
		"the device is /dev/tpm$(vtpm_num tpm)"
	exit 1
fi
ok "swtpm TPM 2.0 registers /dev/tpm0 and /dev/tpmrm0"

for entry in "${classes[@]}"; do
	run_class "${entry%%:*}" "${entry#*:}"
done

expect "swtpm_ioctl -s after the selftests removes /dev/tpm0" vtpm_stop tpm

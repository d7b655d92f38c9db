#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Benchmark our tpm_vtpm_proxy against Debian's in-tree module of the same
# name, in a QEMU guest per kernel series. This is `make bench`.
#
# Usage: scripts/bench.sh [--tiny] [-o DIR] [SERIES]...
#   SERIES is 6.1 or 6.12; without one, the series in $SERIES (default
#   "6.1 6.12"). For each series: build our module and vtpm_bench
#   (tools/vtpm_bench), boot the guest, run scripts/bench-in-guest.sh
#   (both modules, alternating, in one boot), and draw the round-trip
#   distributions with gnuplot. Results go to DIR/SERIES/ (default
#   build/bench/SERIES/): results.md (tables and targets), samples.csv
#   (every sample), table.tsv, targets.tsv, meta.txt, rtt-tpm.png and
#   rtt-tpmrm.png, and the guest's console.log and dmesg.txt.
#
#   --tiny  a small pass (200 commands, 20 devices, 50 at once, 0.5 s
#           of throughput, one turn of each module), as `make check`
#           runs it
#   -o DIR  put the results under DIR instead of build/bench
#
# A full run into build/bench also writes its tables into BENCHMARKS.md,
# between the markers of its series. Targets that are missed are reported,
# not errors; the exit status is non-zero only when a run failed.
set -uo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
. "$top/scripts/lib/deps.sh"
. "$top/scripts/lib/kernel-series.sh"

usage() {
	sed -n '/^# Usage:/,/^# not errors/s/^# \{0,1\}//p' "$0"
}

tiny=
outdir=
while [ $# -gt 0 ]; do
	case "$1" in
	--tiny) tiny=1 ;;
	-o) [ $# -ge 2 ] || die "-o needs a folder"; outdir=$2; shift ;;
	-h | --help) usage; exit 0 ;;
	-*) usage >&2; exit 2 ;;
	*) break ;;
	esac
	shift
done
# shellcheck disable=SC2086 # SERIES is a list of words
[ $# -gt 0 ] || set -- ${SERIES:-$KERNEL_SERIES_ALL}
for series in "$@"; do
	check_series "$series"
done

# The guest runs the host's programs, so they are installed here.
need_packages swtpm gnuplot-nox make gcc kmod

update_doc=
if [ -z "$outdir" ]; then
	outdir=$top/build/bench
	[ -n "$tiny" ] || update_doc=1
fi
mkdir -p "$outdir"
outdir=$(realpath "$outdir")

# The tiny pass has to finish quickly; the full one measures 2000 round
# trips per latency metric, 200 devices in turn and 1000 at once.
if [ -n "$tiny" ]; then
	sizes=(-e BENCH_COMMANDS=200 -e BENCH_DEVICES=20 -e BENCH_SCALE=50
		-e BENCH_SECONDS=0.5 -e BENCH_PASSES=1)
	limit=1200
else
	sizes=()
	limit=5400
fi

info "building vtpm_bench"
make -s -C "$top/tools/vtpm_bench" OUTPUT="$top/build/vtpm_bench" ||
	die "building vtpm_bench failed"

# The host's load average shows how busy the machine was: other guests
# and builds on the host slow down the guest's vCPUs.
host_facts=(-e "BENCH_HOST_CPUS=$(nproc)"
	-e "BENCH_HOST_CPU=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
	-e "BENCH_HOST_KERNEL=$(uname -r)"
	-e "BENCH_SOURCE=commit $(git -C "$top" describe --always --dirty 2>/dev/null || echo unknown)")

# plot DIR draws the CDFs of DIR/plot/*.dat into DIR/rtt-tpm.png and
# DIR/rtt-tpmrm.png: one panel per emulator and placement, each with our
# module, Debian's and the pipe floor.
plot() {
	local dir=$1 node title

	for node in tpm tpmrm; do
		title="/dev/${node}N"
		(
			cd "$dir/plot" || exit 1
			gnuplot <<EOF
set terminal pngcairo noenhanced size 1400,1000 font ",10"
set output "../rtt-$node.png"
set multiplot layout 2,2 title "TPM2_GetRandom(8) round trip through $title: cumulative distribution"
set logscale x
set xlabel "round trip (us)"
set ylabel "fraction of commands"
set yrange [0:1]
set key bottom right
set grid
do for [panel in "trivial_1cpu trivial swtpm_1cpu swtpm"] {
	emulator = (strstrt(panel, "swtpm") ? "swtpm" : "trivial emulator")
	where = (strstrt(panel, "_1cpu") ? "all on one vCPU" : "any vCPU")
	floor = (strstrt(panel, "_1cpu") ? "rtt_pipe_1cpu-pipe.dat" : "rtt_pipe-pipe.dat")
	set title emulator . ", " . where
	plot "rtt_${node}_" . panel . "-ours.dat" using 1:2 with lines lw 2 title "ours", \
	     "rtt_${node}_" . panel . "-debian.dat" using 1:2 with lines lw 2 title "Debian's", \
	     floor using 1:2 with lines lw 2 dt 2 title "pipe floor"
}
unset multiplot
EOF
		) || return 1
	done
}

# update_benchmarks SERIES DIR replaces the results of SERIES in
# BENCHMARKS.md, between its begin and end markers, with DIR/results.md.
update_benchmarks() {
	local series=$1 dir=$2 doc=$top/BENCHMARKS.md begin end

	begin="<!-- results $series begin -->"
	end="<!-- results $series end -->"
	if ! grep -qxF "$begin" "$doc" 2>/dev/null ||
		! grep -qxF "$end" "$doc"; then
		info "BENCHMARKS.md has no markers for $series; not updated"
		return
	fi
	awk -v begin="$begin" -v end="$end" -v results="$dir/results.md" \
		-v date="$(date +%F)" '
		$0 == begin {
			print
			print ""
			# The page has its own headings: two levels down,
			# below the heading of the series.
			while ((getline line < results) > 0) {
				if (line ~ /^## /)
					line = "#### Run of " date
				else if (line ~ /^### /)
					line = "##" line
				print line
			}
			print ""
			skip = 1
			next
		}
		$0 == end { skip = 0 }
		!skip
	' "$doc" >"$doc.tmp" && mv "$doc.tmp" "$doc"
	info "updated the $series results in BENCHMARKS.md"
}

failed=0
for series in "$@"; do
	dir=$outdir/$series
	rm -rf "$dir"
	mkdir -p "$dir"
	if ! ko=$("$top/scripts/build-module.sh" "$series"); then
		printf 'bench: our module does not build for %s\n' "$series" >&2
		failed=1
		continue
	fi

	info "benchmarking $series${tiny:+ (tiny pass)}; results in $dir"
	"$top/scripts/run-in-guest.sh" -s "$series" -m "$ko" -t "$limit" \
		-o "$dir" "${sizes[@]}" "${host_facts[@]}" \
		-e "BENCH_HOST_LOAD_AVERAGE=$(cut -d ' ' -f 1-3 /proc/loadavg)" \
		-e "BENCH_PROGRAM=$top/build/vtpm_bench/vtpm_bench" \
		-- scripts/bench-in-guest.sh
	status=$?
	if [ "$status" != 0 ] || [ ! -s "$dir/results.md" ]; then
		printf 'bench: the %s run failed (status %s); see %s/console.log\n' \
			"$series" "$status" "$dir" >&2
		failed=1
		continue
	fi

	if ! plot "$dir"; then
		printf 'bench: gnuplot failed for %s\n' "$series" >&2
		failed=1
	fi
	[ -z "$update_doc" ] || update_benchmarks "$series" "$dir"
done
exit "$failed"

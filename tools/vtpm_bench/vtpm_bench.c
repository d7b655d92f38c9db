// SPDX-License-Identifier: GPL-2.0
/*
 * vtpm_bench: benchmarks of the vTPM proxy driver; see vtpm_bench.h and
 * usage() below. scripts/bench-in-guest.sh runs it in a guest, once per
 * module and pass, then makes the report.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/inotify.h>

#include "vtpm_bench.h"

/* The parts of a run, for --only. */
#define PART_PIPE		0x01
#define PART_TRIVIAL		0x02
#define PART_SWTPM		0x04
#define PART_CREATE		0x08
#define PART_SCALE		0x10
#define PART_THROUGHPUT		0x20
#define PART_ALL		0x3f

static const struct {
	const char *name;
	unsigned int part;
} part_names[] = {
	{ "pipe", PART_PIPE },
	{ "trivial", PART_TRIVIAL },
	{ "swtpm", PART_SWTPM },
	{ "create", PART_CREATE },
	{ "scale", PART_SCALE },
	{ "throughput", PART_THROUGHPUT },
};

static void print_usage(FILE *out)
{
	fprintf(out,
		"usage: vtpm_bench run --driver NAME --out DIR [OPTION]...\n"
		"       vtpm_bench report DIR\n"
		"\n"
		"run measures the loaded tpm_vtpm_proxy module and a pipe ping-pong\n"
		"(the floor) and appends the samples to DIR/samples.csv. It must run\n"
		"as root, with no other vTPM device alive.\n"
		"  --driver NAME      label of the loaded module: ours or debian\n"
		"  --pass N           pass number, a label (default 1)\n"
		"  --slot N           position of the run in the boot, a label (default 1)\n"
		"  --out DIR          folder of samples.csv\n"
		"  --commands N       round trips per latency measurement (default 2000)\n"
		"  --devices N        devices created and closed in turn (default 200)\n"
		"  --scale N          devices alive at once (default 1000)\n"
		"  --seconds S        duration of each throughput measurement (default 2)\n"
		"  --parallel LIST    device counts for throughput, comma separated\n"
		"                     (default 1,VCPUS,4,16)\n"
		"  --only LIST        measure only these parts, comma separated: pipe,\n"
		"                     trivial, swtpm, create, scale, throughput\n"
		"\n"
		"report reads DIR/samples.csv and DIR/meta.txt and writes DIR/results.md\n"
		"(also printed), DIR/table.tsv, DIR/targets.tsv and DIR/plot/*.dat.\n");
}

static int parse_count(const char *text, unsigned int *value)
{
	unsigned long number;
	char *end;

	errno = 0;
	number = strtoul(text, &end, 10);
	if (errno || end == text || *end || number == 0 || number > INT_MAX)
		return -EINVAL;
	*value = number;
	return 0;
}

/* Add @count to the sorted set of throughput device counts. */
static int add_parallel(struct bench_options *opt, unsigned int count)
{
	unsigned int i, j;

	for (i = 0; i < opt->nr_parallel; i++)
		if (opt->parallel[i] == count)
			return 0;
	if (opt->nr_parallel == MAX_PARALLEL)
		return -E2BIG;
	for (j = opt->nr_parallel++; j > 0 && opt->parallel[j - 1] > count; j--)
		opt->parallel[j] = opt->parallel[j - 1];
	opt->parallel[j] = count;
	return 0;
}

static int parse_parallel(const char *text, struct bench_options *opt)
{
	char *copy = strdup(text), *item, *save = NULL;
	unsigned int count;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	opt->nr_parallel = 0;
	for (item = strtok_r(copy, ",", &save); item && !rc;
	     item = strtok_r(NULL, ",", &save)) {
		rc = parse_count(item, &count);
		if (!rc)
			rc = add_parallel(opt, count);
	}
	free(copy);
	return rc || !opt->nr_parallel ? -EINVAL : 0;
}

static int parse_parts(const char *text, unsigned int *parts)
{
	char *copy = strdup(text), *item, *save = NULL;
	unsigned int i;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	*parts = 0;
	for (item = strtok_r(copy, ",", &save); item && !rc;
	     item = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < ARRAY_SIZE(part_names); i++)
			if (!strcmp(item, part_names[i].name))
				break;
		if (i == ARRAY_SIZE(part_names))
			rc = -EINVAL;
		else
			*parts |= part_names[i].part;
	}
	free(copy);
	return rc;
}

static void bad_option(const char *option, const char *value,
		       const char *expected)
{
	fprintf(stderr, "vtpm_bench: invalid %s '%s': expected %s\n", option,
		value, expected);
	exit(2);
}

static void set_default_parallel(struct bench_options *opt)
{
	long vcpus = sysconf(_SC_NPROCESSORS_ONLN);

	add_parallel(opt, 1);
	if (vcpus > 1 && vcpus <= INT_MAX)
		add_parallel(opt, vcpus);
	add_parallel(opt, 4);
	add_parallel(opt, 16);
}

static void parse_run_options(int argc, char **argv,
			      struct bench_options *opt, unsigned int *parts)
{
	static const struct option options[] = {
		{ "driver", required_argument, NULL, 'd' },
		{ "pass", required_argument, NULL, 'p' },
		{ "slot", required_argument, NULL, 'S' },
		{ "out", required_argument, NULL, 'o' },
		{ "commands", required_argument, NULL, 'c' },
		{ "devices", required_argument, NULL, 'n' },
		{ "scale", required_argument, NULL, 's' },
		{ "seconds", required_argument, NULL, 't' },
		{ "parallel", required_argument, NULL, 'P' },
		{ "only", required_argument, NULL, 'O' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	char *end;
	int c;

	while ((c = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (c) {
		case 'd':
			opt->driver = optarg;
			break;
		case 'p':
			if (parse_count(optarg, &opt->pass))
				bad_option("--pass", optarg, "a positive number");
			break;
		case 'S':
			if (parse_count(optarg, &opt->slot))
				bad_option("--slot", optarg, "a positive number");
			break;
		case 'o':
			opt->out_dir = optarg;
			break;
		case 'c':
			if (parse_count(optarg, &opt->commands))
				bad_option("--commands", optarg,
					   "a positive number");
			break;
		case 'n':
			if (parse_count(optarg, &opt->devices))
				bad_option("--devices", optarg,
					   "a positive number");
			break;
		case 's':
			if (parse_count(optarg, &opt->scale))
				bad_option("--scale", optarg,
					   "a positive number");
			break;
		case 't':
			opt->seconds = strtod(optarg, &end);
			if (end == optarg || *end || !(opt->seconds > 0))
				bad_option("--seconds", optarg,
					   "a positive number of seconds");
			break;
		case 'P':
			if (parse_parallel(optarg, opt))
				bad_option("--parallel", optarg,
					   "at most 8 positive numbers, comma separated");
			break;
		case 'O':
			if (parse_parts(optarg, parts))
				bad_option("--only", optarg,
					   "names of parts, comma separated");
			break;
		case 'h':
			print_usage(stdout);
			exit(0);
		default:
			print_usage(stderr);
			exit(2);
		}
	}
	if (optind != argc || !opt->driver || !opt->out_dir) {
		print_usage(stderr);
		exit(2);
	}
	if (strcmp(opt->driver, "ours") && strcmp(opt->driver, "debian"))
		bad_option("--driver", opt->driver, "ours or debian");
}

/*
 * Open samples.csv, the inotify watch on /dev and, unless only the pipe
 * floor is measured, /dev/vtpmx.
 */
static void open_run(struct bench_run *run, const struct bench_options *opt,
		     unsigned int parts)
{
	char path[PATH_MAX];

	memset(run, 0, sizeof(*run));
	run->opt = opt;
	run->vtpmx = -1;
	if (parts & ~PART_PIPE) {
		run->vtpmx = open("/dev/vtpmx", O_RDWR | O_CLOEXEC);
		if (run->vtpmx < 0)
			fail("cannot open /dev/vtpmx: %s; load tpm_vtpm_proxy and run as root",
			     strerror(errno));
	}

	run->inotify = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (run->inotify < 0 ||
	    inotify_add_watch(run->inotify, "/dev", IN_CREATE | IN_DELETE) < 0)
		fail("cannot watch /dev with inotify: %s", strerror(errno));

	snprintf(path, sizeof(path), "%s/samples.csv", opt->out_dir);
	run->csv = fopen(path, "ae");
	if (!run->csv)
		fail("cannot open %s: %s", path, strerror(errno));
	if (ftell(run->csv) == 0)
		fprintf(run->csv, "driver,pass,slot,metric,value\n");
}

/*
 * Let the benchmark's processes and threads run on any CPU of @all, or
 * only on its highest-numbered CPU. Children and threads created later
 * inherit the setting.
 */
static void set_placement(struct bench_run *run, const cpu_set_t *all,
			  bool one_cpu)
{
	cpu_set_t one;
	int cpu;

	run->placement = "";
	run->placement_note = ", on any vCPU";
	if (!one_cpu) {
		if (sched_setaffinity(0, sizeof(*all), all))
			fail("sched_setaffinity failed: %s", strerror(errno));
		return;
	}

	for (cpu = CPU_SETSIZE - 1; cpu > 0 && !CPU_ISSET(cpu, all); cpu--)
		;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	if (sched_setaffinity(0, sizeof(one), &one))
		fail("sched_setaffinity to CPU %d failed: %s", cpu,
		     strerror(errno));
	run->placement = PLACEMENT_ONE_CPU;
	run->placement_note = ", all on one vCPU";
}

/*
 * Latencies are measured twice: with the client, the emulator and the
 * benchmark's threads on one vCPU, where a wake-up needs no
 * inter-processor interrupt, and with no pinning, as users run. Under
 * TCG on a busy host, waking a task on the other vCPU can cost
 * milliseconds, which would hide the driver's own cost.
 */
static void run_latencies(struct bench_run *run, const cpu_set_t *all,
			  unsigned int parts)
{
	static const bool one_cpu[] = { true, false };
	unsigned int i;

	for (i = 0; i < 2; i++) {
		set_placement(run, all, one_cpu[i]);
		if (parts & PART_PIPE)
			measure_pipe_round_trips(run);
		if (parts & PART_TRIVIAL)
			measure_trivial_round_trips(run);
		if (parts & PART_SWTPM)
			measure_swtpm_round_trips(run);
		if (parts & PART_CREATE)
			measure_create_close(run);
	}
}

static int run_main(int argc, char **argv)
{
	struct bench_options opt = {
		.pass = 1,
		.slot = 1,
		.commands = 2000,
		.devices = 200,
		.scale = 1000,
		.seconds = 2,
	};
	unsigned int parts = PART_ALL;
	struct bench_run run;
	cpu_set_t all;

	parse_run_options(argc, argv, &opt, &parts);
	if (!opt.nr_parallel)
		set_default_parallel(&opt);
	if (sched_getaffinity(0, sizeof(all), &all))
		fail("sched_getaffinity failed: %s", strerror(errno));
	open_run(&run, &opt, parts);
	build_getrandom();
	record(&run, "guest", "vcpus", CPU_COUNT(&all));

	run_latencies(&run, &all, parts);
	set_placement(&run, &all, false);
	if (parts & PART_PIPE)
		measure_pipe_throughput(&run);
	if (parts & PART_SCALE)
		measure_scale(&run);
	if (parts & PART_THROUGHPUT)
		measure_throughput(&run);
	record(&run, opt.driver, "registration_failures",
	       run.registration_failures);

	if (fclose(run.csv))
		fail("writing samples.csv failed: %s", strerror(errno));
	close(run.inotify);
	if (run.vtpmx >= 0)
		close(run.vtpmx);
	note("%s, pass %u: done", opt.driver, opt.pass);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "run"))
		return run_main(argc - 1, argv + 1);
	if (argc == 3 && !strcmp(argv[1], "report"))
		return report(argv[2]);
	if (argc == 2 && (!strcmp(argv[1], "-h") ||
			  !strcmp(argv[1], "--help"))) {
		print_usage(stdout);
		return 0;
	}
	print_usage(stderr);
	return 2;
}

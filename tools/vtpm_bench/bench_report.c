// SPDX-License-Identifier: GPL-2.0
/*
 * vtpm_bench report: read samples.csv of one guest boot, in which our
 * module and Debian's were measured in alternating passes, and write the
 * comparison: results.md (tables and targets, also printed), table.tsv
 * (the main table for scripts), targets.tsv (one verdict per line) and
 * plot/METRIC-DRIVER.dat (the round-trip distributions as CDFs, for
 * gnuplot).
 *
 * Latency percentiles pool the samples of all passes of a driver. Metrics
 * with one value per run (throughput, memory) take the median of the
 * runs. The per-pass table shows how much the passes differ.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "vtpm_bench.h"

/* Points written per CDF; larger sample sets are thinned evenly. */
#define CDF_POINTS		2000
/* Maximum number of passes shown in the per-pass table. */
#define MAX_PASSES		4
/* Maximum number of lines of the main table. */
#define MAX_ROWS		64

#define NSEC_PER_USEC_F		1e3
#define NSEC_PER_MSEC_F		1e6
#define NSEC_PER_SEC_F		1e9
#define BYTES_PER_KIB_F		1024.0

/* One row of samples.csv. */
struct csv_row {
	char driver[16];
	unsigned int pass;
	unsigned int slot;
	char metric[32];
	double value;
};

struct csv_rows {
	struct csv_row *rows;
	size_t count;
};

enum statistic { STAT_P50, STAT_P90, STAT_P99, STAT_MEDIAN, STAT_SUM };

static const char * const statistic_names[] = {
	[STAT_P50] = "p50", [STAT_P90] = "p90", [STAT_P99] = "p99",
	[STAT_MEDIAN] = "median", [STAT_SUM] = "sum",
};

/**
 * struct metric_row - a line of the main table
 * @label:        what the line shows, with its unit
 * @metric:       the metric in samples.csv
 * @stat:         percentile of the pooled samples, or median or sum of the
 *                runs
 * @divisor:      turns the recorded unit into the shown one
 * @lower:        a lower value is better (times, memory); else a higher one
 * @floor_metric: the pipe floor's metric to compare with, or ""
 */
struct metric_row {
	char label[96];
	char metric[48];
	enum statistic stat;
	double divisor;
	bool lower;
	char floor_metric[48];
};

/* The placements of the latency measurements; see vtpm_bench.c. */
static const struct {
	const char *name;
	const char *suffix;
} placements[] = {
	{ "one vCPU", PLACEMENT_ONE_CPU },
	{ "any vCPU", "" },
};

/* Round trips: the node and emulator, and the metric without placement. */
static const struct {
	const char *what;
	const char *metric;
} round_trips[] = {
	{ "/dev/tpmN, trivial emulator", "rtt_tpm_trivial" },
	{ "/dev/tpmrmN, trivial emulator", "rtt_tpmrm_trivial" },
	{ "/dev/tpmN, swtpm", "rtt_tpm_swtpm" },
	{ "/dev/tpmrmN, swtpm", "rtt_tpmrm_swtpm" },
};

/* Metrics with one value per run. */
static const struct {
	const char *label;
	const char *metric;
	double divisor;
	bool lower;
} scale_metrics[] = {
	{ "scale: devices alive and answering", "scale_answered", 1, false },
	{ "scale: all devices ready (s)", "scale_ready_all", NSEC_PER_SEC_F,
	  true },
	{ "scale: all devices gone after close (s)", "scale_teardown",
	  NSEC_PER_SEC_F, true },
	{ "scale: MemAvailable drop per device (KiB)", "scale_mem_available",
	  BYTES_PER_KIB_F, true },
	{ "scale: Slab growth per device (KiB)", "scale_slab",
	  BYTES_PER_KIB_F, true },
	{ "scale: KernelStack growth per device (KiB)", "scale_kernel_stack",
	  BYTES_PER_KIB_F, true },
};

static const char * const drivers[] = { "ours", "debian" };

/*
 * Outputs of the report and the state to build them: results.md and
 * stdout get everything, table.tsv the main table, targets.tsv one line
 * per target.
 */
struct report_out {
	FILE *md;
	FILE *tsv;
	FILE *targets;
	const struct csv_rows *rows;
	struct metric_row table[MAX_ROWS];
	unsigned int nr_rows;
	unsigned int nr_passes;
	unsigned int vcpus;
};

static int read_rows(const char *path, struct csv_rows *out)
{
	struct csv_row row;
	size_t size = 0;
	char line[256];
	FILE *file;

	file = fopen(path, "re");
	if (!file)
		return -errno;
	memset(out, 0, sizeof(*out));
	while (fgets(line, sizeof(line), file)) {
		if (sscanf(line, "%15[^,],%u,%u,%31[^,],%lf", row.driver,
			   &row.pass, &row.slot, row.metric, &row.value) != 5)
			continue;	/* the header */
		if (out->count == size) {
			size = size ? 2 * size : 4096;
			out->rows = realloc(out->rows,
					    size * sizeof(*out->rows));
			if (!out->rows)
				fail("out of memory reading %s", path);
		}
		out->rows[out->count++] = row;
	}
	fclose(file);
	return 0;
}

/* Collect the sorted values of @driver's @metric in @pass (0: all). */
static void collect(const struct csv_rows *rows, const char *driver,
		    const char *metric, unsigned int pass, struct samples *s)
{
	size_t i;

	memset(s, 0, sizeof(*s));
	for (i = 0; i < rows->count; i++) {
		const struct csv_row *row = &rows->rows[i];

		if (!strcmp(row->driver, driver) &&
		    !strcmp(row->metric, metric) &&
		    (!pass || row->pass == pass))
			samples_add(s, row->value);
	}
	samples_sort(s);
}

static double statistic(const struct csv_rows *rows, const char *driver,
			const char *metric, enum statistic stat,
			unsigned int pass)
{
	struct samples s;
	double value;

	collect(rows, driver, metric, pass, &s);
	switch (stat) {
	case STAT_P50:
		value = samples_percentile(&s, 0.50);
		break;
	case STAT_P90:
		value = samples_percentile(&s, 0.90);
		break;
	case STAT_P99:
		value = samples_percentile(&s, 0.99);
		break;
	case STAT_SUM:
		value = samples_sum(&s);
		break;
	default:
		value = samples_median(&s);
		break;
	}
	samples_free(&s);
	return value;
}

static double row_value(const struct csv_rows *rows,
			const struct metric_row *row, const char *driver,
			unsigned int pass)
{
	const char *metric = row->metric;

	if (!strcmp(driver, DRIVER_PIPE)) {
		if (!row->floor_metric[0])
			return NAN;
		metric = row->floor_metric;
	}
	return statistic(rows, driver, metric, row->stat, pass) / row->divisor;
}

/* How many times better ours is than Debian's: above 1, ours wins. */
static double gain(const struct metric_row *row, double ours, double debian)
{
	return row->lower ? debian / ours : ours / debian;
}

/* How many times the floor's cost ours has: 1 is the floor itself. */
static double floor_cost(const struct metric_row *row, double ours,
			 double pipe)
{
	return row->lower ? ours / pipe : pipe / ours;
}

static bool usable(double value)
{
	return isfinite(value);
}

static void format_value(char *text, size_t size, double value)
{
	if (!usable(value))
		snprintf(text, size, "n/a");
	else if (fabs(value) >= 100 || value == floor(value))
		snprintf(text, size, "%.0f", value);
	else if (fabs(value) >= 10)
		snprintf(text, size, "%.1f", value);
	else
		snprintf(text, size, "%.2f", value);
}

static void format_ratio(char *text, size_t size, double ratio)
{
	if (!usable(ratio))
		snprintf(text, size, "n/a");
	else
		snprintf(text, size, "%.2fx", ratio);
}

/* The label of @row without its unit, for a sentence. */
static void row_name(char *text, size_t size, const struct metric_row *row)
{
	size_t length = strcspn(row->label, "(");

	while (length > 0 && row->label[length - 1] == ' ')
		length--;
	snprintf(text, size, "%.*s", (int)length, row->label);
}

static struct metric_row *add_row(struct report_out *out)
{
	struct metric_row *row;

	if (out->nr_rows == MAX_ROWS)
		fail("more than %d lines in the table", MAX_ROWS);
	row = &out->table[out->nr_rows++];
	memset(row, 0, sizeof(*row));
	return row;
}

static void add_latency_rows(struct report_out *out, const char *where,
			     const char *suffix)
{
	static const enum statistic stats[] = { STAT_P50, STAT_P90, STAT_P99 };
	struct metric_row *row;
	unsigned int i, j;

	for (i = 0; i < ARRAY_SIZE(round_trips); i++) {
		for (j = 0; j < ARRAY_SIZE(stats); j++) {
			row = add_row(out);
			snprintf(row->label, sizeof(row->label),
				 "round trip %s, %s, %s (us)",
				 round_trips[i].what, where,
				 statistic_names[stats[j]]);
			snprintf(row->metric, sizeof(row->metric), "%s%s",
				 round_trips[i].metric, suffix);
			snprintf(row->floor_metric, sizeof(row->floor_metric),
				 "rtt_pipe%s", suffix);
			row->stat = stats[j];
			row->divisor = NSEC_PER_USEC_F;
			row->lower = true;
		}
	}
}

static void add_device_rows(struct report_out *out, const char *where,
			    const char *suffix)
{
	static const enum statistic stats[] = { STAT_P50, STAT_P99 };
	static const char * const labels[] = {
		"create to ready", "close to gone",
	};
	static const char * const metrics[] = {
		"create_ready", "close_gone",
	};
	struct metric_row *row;
	unsigned int i, j;

	for (i = 0; i < ARRAY_SIZE(metrics); i++) {
		for (j = 0; j < ARRAY_SIZE(stats); j++) {
			row = add_row(out);
			snprintf(row->label, sizeof(row->label),
				 "%s, %s, %s (ms)", labels[i], where,
				 statistic_names[stats[j]]);
			snprintf(row->metric, sizeof(row->metric), "%s%s",
				 metrics[i], suffix);
			row->stat = stats[j];
			row->divisor = NSEC_PER_MSEC_F;
			row->lower = true;
		}
	}
}

/* The device counts of the throughput measurement, ascending. */
static unsigned int throughput_counts(const struct csv_rows *rows,
				      unsigned int *counts)
{
	unsigned int n = 0, count, i, j;
	size_t r;

	for (r = 0; r < rows->count; r++) {
		if (sscanf(rows->rows[r].metric, "tput_%u", &count) != 1)
			continue;
		for (i = 0; i < n && counts[i] != count; i++)
			;
		if (i < n || n == MAX_PARALLEL)
			continue;
		for (j = n++; j > 0 && counts[j - 1] > count; j--)
			counts[j] = counts[j - 1];
		counts[j] = count;
	}
	return n;
}

static void add_other_rows(struct report_out *out)
{
	unsigned int counts[MAX_PARALLEL], n, i;
	struct metric_row *row;

	for (i = 0; i < ARRAY_SIZE(scale_metrics); i++) {
		row = add_row(out);
		snprintf(row->label, sizeof(row->label), "%s",
			 scale_metrics[i].label);
		snprintf(row->metric, sizeof(row->metric), "%s",
			 scale_metrics[i].metric);
		row->stat = STAT_MEDIAN;
		row->divisor = scale_metrics[i].divisor;
		row->lower = scale_metrics[i].lower;
	}

	row = add_row(out);
	snprintf(row->label, sizeof(row->label),
		 "registrations that failed, all runs (devices)");
	snprintf(row->metric, sizeof(row->metric), "registration_failures");
	row->stat = STAT_SUM;
	row->divisor = 1;
	row->lower = true;

	n = throughput_counts(out->rows, counts);
	for (i = 0; i < n; i++) {
		row = add_row(out);
		snprintf(row->label, sizeof(row->label),
			 "throughput, %u device%s (commands/s)", counts[i],
			 counts[i] == 1 ? "" : "s");
		snprintf(row->metric, sizeof(row->metric), "tput_%u",
			 counts[i]);
		snprintf(row->floor_metric, sizeof(row->floor_metric),
			 "tput_%u", counts[i]);
		row->stat = STAT_MEDIAN;
		row->divisor = 1;
	}
}

static void build_table(struct report_out *out)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(placements); i++)
		add_latency_rows(out, placements[i].name, placements[i].suffix);
	for (i = 0; i < ARRAY_SIZE(placements); i++)
		add_device_rows(out, placements[i].name, placements[i].suffix);
	add_other_rows(out);
}

static const struct metric_row *find_row(const struct report_out *out,
					 const char *metric,
					 enum statistic stat)
{
	unsigned int i;

	for (i = 0; i < out->nr_rows; i++)
		if (!strcmp(out->table[i].metric, metric) &&
		    out->table[i].stat == stat)
			return &out->table[i];
	fail("no table row for %s", metric);
}

static void emit(struct report_out *out, const char *fmt, ...) __printf(2, 3);

static void emit(struct report_out *out, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vfprintf(out->md, fmt, args);
	va_end(args);
	va_start(args, fmt);
	vprintf(fmt, args);
	va_end(args);
}

static void emit_main_row(struct report_out *out, const struct metric_row *row)
{
	double ours = row_value(out->rows, row, "ours", 0);
	double debian = row_value(out->rows, row, "debian", 0);
	double pipe = row_value(out->rows, row, DRIVER_PIPE, 0);
	bool has_floor = row->floor_metric[0];
	char cells[5][32];

	format_value(cells[0], sizeof(cells[0]), ours);
	format_value(cells[1], sizeof(cells[1]), debian);
	format_value(cells[2], sizeof(cells[2]), pipe);
	format_ratio(cells[3], sizeof(cells[3]), gain(row, ours, debian));
	format_ratio(cells[4], sizeof(cells[4]),
		     has_floor ? floor_cost(row, ours, pipe) : NAN);
	emit(out, "| %s | %s | %s | %s | %s | %s |\n", row->label, cells[0],
	     cells[1], cells[2], cells[3], cells[4]);
	fprintf(out->tsv, "%s.%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row->metric,
		statistic_names[row->stat], row->label, cells[0], cells[1],
		has_floor ? cells[2] : "-", cells[3], cells[4]);
}

static void emit_main_table(struct report_out *out)
{
	unsigned int i;

	emit(out, "| metric | ours | debian | pipe floor | gain over debian | cost over floor |\n");
	emit(out, "|---|---:|---:|---:|---:|---:|\n");
	for (i = 0; i < out->nr_rows; i++)
		emit_main_row(out, &out->table[i]);
	emit(out, "\ngain over debian: how many times better ours is than Debian's module:\n");
	emit(out, "debian/ours for times and memory, ours/debian for rates.\n");
	emit(out, "cost over floor: ours/pipe for times, pipe/ours for rates;\n");
	emit(out, "1.00x is the cost of the pipe ping-pong itself.\n");
}

static void emit_pass_table(struct report_out *out)
{
	const struct metric_row *row;
	unsigned int i, pass, d;
	char cell[32];

	emit(out, "| metric |");
	for (pass = 1; pass <= out->nr_passes; pass++)
		for (d = 0; d < ARRAY_SIZE(drivers); d++)
			emit(out, " %s, pass %u |", drivers[d], pass);
	emit(out, "\n|---|");
	for (i = 0; i < ARRAY_SIZE(drivers) * out->nr_passes; i++)
		emit(out, "---:|");
	emit(out, "\n");

	for (i = 0; i < out->nr_rows; i++) {
		row = &out->table[i];
		if (row->stat == STAT_P90)
			continue;
		emit(out, "| %s |", row->label);
		for (pass = 1; pass <= out->nr_passes; pass++) {
			for (d = 0; d < ARRAY_SIZE(drivers); d++) {
				format_value(cell, sizeof(cell),
					     row_value(out->rows, row,
						       drivers[d], pass));
				emit(out, " %s |", cell);
			}
		}
		emit(out, "\n");
	}
}

/* Print one target line: PASS or MISS, the measured ratio, each pass's. */
static void emit_target(struct report_out *out, bool met, const char *what,
			double ratio, const double *per_pass)
{
	const char *verdict = met ? "PASS" : "MISS";
	unsigned int pass;
	char text[32];

	format_ratio(text, sizeof(text), ratio);
	emit(out, "- %s: %s: %s", verdict, what, text);
	fprintf(out->targets, "%s\t%s\t%s\n", verdict, what, text);
	if (out->nr_passes > 1) {
		emit(out, " (");
		for (pass = 1; pass <= out->nr_passes; pass++) {
			format_ratio(text, sizeof(text), per_pass[pass - 1]);
			emit(out, "%spass %u: %s", pass > 1 ? ", " : "", pass,
			     text);
		}
		emit(out, ")");
	}
	emit(out, "\n");
}

/* Ours at most @limit times the pipe floor. */
static void target_floor(struct report_out *out, const struct metric_row *row,
			 double limit)
{
	double per_pass[MAX_PASSES] = { 0 }, ratio;
	char what[160], name[96];
	unsigned int pass;

	for (pass = 1; pass <= out->nr_passes; pass++)
		per_pass[pass - 1] =
			floor_cost(row, row_value(out->rows, row, "ours", pass),
				   row_value(out->rows, row, DRIVER_PIPE, pass));
	ratio = floor_cost(row, row_value(out->rows, row, "ours", 0),
			   row_value(out->rows, row, DRIVER_PIPE, 0));
	row_name(name, sizeof(name), row);
	snprintf(what, sizeof(what), "%s at most %.1fx the pipe floor", name,
		 limit);
	emit_target(out, usable(ratio) && ratio <= limit, what, ratio,
		    per_pass);
}

/* Ours at least @limit times better than Debian's module. */
static void target_gain(struct report_out *out, const struct metric_row *row,
			double limit)
{
	double per_pass[MAX_PASSES] = { 0 }, ratio;
	char what[160], name[96];
	unsigned int pass;

	for (pass = 1; pass <= out->nr_passes; pass++)
		per_pass[pass - 1] =
			gain(row, row_value(out->rows, row, "ours", pass),
			     row_value(out->rows, row, "debian", pass));
	ratio = gain(row, row_value(out->rows, row, "ours", 0),
		     row_value(out->rows, row, "debian", 0));
	row_name(name, sizeof(name), row);
	snprintf(what, sizeof(what), "%s at least %.0fx faster than debian",
		 name, limit);
	emit_target(out, usable(ratio) && ratio >= limit, what, ratio,
		    per_pass);
}

static double growth(const struct csv_rows *rows, const char *driver,
		     unsigned int devices, unsigned int pass)
{
	char metric[32];
	double one;

	one = statistic(rows, driver, "tput_1", STAT_MEDIAN, pass);
	snprintf(metric, sizeof(metric), "tput_%u", devices);
	return statistic(rows, driver, metric, STAT_MEDIAN, pass) / one;
}

/*
 * Throughput grows with the devices up to the vCPU count: with V vCPUs,
 * V devices reach at least (1 + V) / 2 times the rate of one, half of the
 * ideal gain. The growth of Debian's module and of V pipe pairs is shown
 * for comparison: the pipe shows what the guest's vCPUs allow at all.
 */
static void target_growth(struct report_out *out)
{
	unsigned int v = out->vcpus, pass;
	double per_pass[MAX_PASSES] = { 0 }, ratio, limit = (1.0 + v) / 2;
	char what[200], debian[32], pipe[32];

	for (pass = 1; pass <= out->nr_passes; pass++)
		per_pass[pass - 1] = growth(out->rows, "ours", v, pass);
	ratio = growth(out->rows, "ours", v, 0);
	format_ratio(debian, sizeof(debian), growth(out->rows, "debian", v, 0));
	format_ratio(pipe, sizeof(pipe), growth(out->rows, DRIVER_PIPE, v, 0));
	snprintf(what, sizeof(what),
		 "throughput with %u devices (the vCPU count) at least %.1fx that with 1 device (debian: %s, pipe floor: %s)",
		 v, limit, debian, pipe);
	emit_target(out, usable(ratio) && ratio >= limit, what, ratio,
		    per_pass);
}

static void emit_placement_targets(struct report_out *out, const char *suffix)
{
	static const char * const gain_metrics[] = {
		"rtt_tpm_swtpm", "rtt_tpmrm_swtpm",
	};
	static const enum statistic gain_stats[] = { STAT_P50, STAT_P99 };
	char metric[48];
	unsigned int i, j;

	snprintf(metric, sizeof(metric), "rtt_tpm_trivial%s", suffix);
	target_floor(out, find_row(out, metric, STAT_P50), 1.3);
	snprintf(metric, sizeof(metric), "rtt_tpmrm_trivial%s", suffix);
	target_floor(out, find_row(out, metric, STAT_P50), 1.3);
	for (i = 0; i < ARRAY_SIZE(gain_metrics); i++) {
		snprintf(metric, sizeof(metric), "%s%s", gain_metrics[i],
			 suffix);
		for (j = 0; j < ARRAY_SIZE(gain_stats); j++)
			target_gain(out, find_row(out, metric, gain_stats[j]),
				    3);
	}
	snprintf(metric, sizeof(metric), "create_ready%s", suffix);
	target_gain(out, find_row(out, metric, STAT_P50), 5);
}

static void emit_targets(struct report_out *out)
{
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(placements); i++)
		emit_placement_targets(out, placements[i].suffix);
	target_growth(out);
}

/* Write a CDF of @driver's @metric: "microseconds fraction" per line. */
static void write_cdf(const struct csv_rows *rows, const char *dir,
		      const char *metric, const char *driver)
{
	char path[PATH_MAX];
	struct samples s;
	size_t i, step;
	FILE *file;

	collect(rows, driver, metric, 0, &s);
	if (!s.count) {
		samples_free(&s);
		return;
	}
	snprintf(path, sizeof(path), "%s/plot/%s-%s.dat", dir, metric, driver);
	file = fopen(path, "we");
	if (!file)
		fail("cannot write %s: %s", path, strerror(errno));
	step = s.count > CDF_POINTS ? s.count / CDF_POINTS : 1;
	for (i = 0; i < s.count; i += step)
		fprintf(file, "%.3f %.5f\n", s.values[i] / NSEC_PER_USEC_F,
			(double)(i + 1) / s.count);
	fprintf(file, "%.3f 1\n", s.values[s.count - 1] / NSEC_PER_USEC_F);
	fclose(file);
	samples_free(&s);
}

static void write_plot_data(const struct csv_rows *rows, const char *dir)
{
	char path[PATH_MAX], metric[48];
	unsigned int i, j, d;

	snprintf(path, sizeof(path), "%s/plot", dir);
	if (mkdir(path, 0755) && errno != EEXIST)
		fail("cannot make %s: %s", path, strerror(errno));
	for (i = 0; i < ARRAY_SIZE(placements); i++) {
		for (j = 0; j < ARRAY_SIZE(round_trips); j++) {
			snprintf(metric, sizeof(metric), "%s%s",
				 round_trips[j].metric, placements[i].suffix);
			for (d = 0; d < ARRAY_SIZE(drivers); d++)
				write_cdf(rows, dir, metric, drivers[d]);
		}
		snprintf(metric, sizeof(metric), "rtt_pipe%s",
			 placements[i].suffix);
		write_cdf(rows, dir, metric, DRIVER_PIPE);
	}
}

/* Copy meta.txt ("key=value" lines) as a list, if the folder has one. */
static void emit_meta(struct report_out *out, const char *dir)
{
	char path[PATH_MAX], line[512], *equals;
	FILE *file;

	snprintf(path, sizeof(path), "%s/meta.txt", dir);
	file = fopen(path, "re");
	if (!file)
		return;
	while (fgets(line, sizeof(line), file)) {
		line[strcspn(line, "\n")] = '\0';
		equals = strchr(line, '=');
		if (!equals)
			continue;
		*equals = '\0';
		emit(out, "- %s: %s\n", line, equals + 1);
	}
	fclose(file);
	emit(out, "\n");
}

static FILE *open_output(const char *dir, const char *name)
{
	char path[PATH_MAX];
	FILE *file;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	file = fopen(path, "we");
	if (!file)
		fail("cannot write %s: %s", path, strerror(errno));
	return file;
}

static unsigned int count_passes(const struct csv_rows *rows)
{
	unsigned int passes = 0;
	size_t i;

	for (i = 0; i < rows->count; i++)
		if (strcmp(rows->rows[i].driver, DRIVER_PIPE) &&
		    rows->rows[i].pass > passes)
			passes = rows->rows[i].pass;
	return passes > MAX_PASSES ? MAX_PASSES : passes;
}

/* "vtpm_bench report DIR": see the top of this file. */
int report(const char *dir)
{
	static struct report_out out;
	struct csv_rows rows;
	char path[PATH_MAX];
	double vcpus;
	int rc;

	snprintf(path, sizeof(path), "%s/samples.csv", dir);
	rc = read_rows(path, &rows);
	if (rc)
		fail("cannot read %s: %s", path, strerror(-rc));
	if (!rows.count)
		fail("%s holds no samples", path);

	out.rows = &rows;
	out.nr_passes = count_passes(&rows);
	vcpus = statistic(&rows, "guest", "vcpus", STAT_MEDIAN, 0);
	out.vcpus = usable(vcpus) ? (unsigned int)vcpus : 1;
	build_table(&out);
	out.md = open_output(dir, "results.md");
	out.tsv = open_output(dir, "table.tsv");
	out.targets = open_output(dir, "targets.tsv");

	emit(&out, "## vTPM proxy benchmark\n\n");
	emit_meta(&out, dir);
	emit_main_table(&out);
	emit(&out, "\n### Targets\n\n");
	emit_targets(&out);
	emit(&out, "\n### Per pass\n\n");
	emit_pass_table(&out);

	fclose(out.md);
	fclose(out.tsv);
	fclose(out.targets);
	write_plot_data(&rows, dir);
	free(rows.rows);
	return 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Lane "threads": 8 threads create devices, serve them for a short random
 * time and close them. Meanwhile other threads use the devices that are
 * live at that moment. Two send TPM2_GetRandom through /dev/tpmrmN, one
 * reads every attribute in /sys/class/tpm/tpmN/ (some of which send
 * commands), and one makes a tpm-rng-N the current hardware RNG and reads
 * /dev/hwrng. A device may go away under any of them at any time.
 *
 * A watchdog bounds every call: a thread that spends more than
 * STRESS_WAIT_MS in one call is named with the call, and the lane stops.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vtpm_stress.h"

#define NR_CREATORS		8
#define NR_TPMRM_USERS		2
#define NR_WORKERS		(NR_CREATORS + NR_TPMRM_USERS + 2)
#define SYSFS_WORKER		(NR_CREATORS + NR_TPMRM_USERS)
#define HWRNG_WORKER		(SYSFS_WORKER + 1)
/* Maximum time a creator serves a registered device before closing it. */
#define MAX_LIVE_MS		50

enum {
	CHECK_CREATE,
	CHECK_REGISTERS,
	CHECK_TPMRM_RESULT,
	CHECK_TPMRM_SUCCEEDS,
	CHECK_SYSFS_READ,
	CHECK_HWRNG_RESULT,
	CHECK_HWRNG_SUCCEEDS,
	CHECK_NO_HANG,
	NR_CHECKS,
};

static struct stress_check checks[NR_CHECKS] = {
	[CHECK_CREATE] = {
		"VTPM_PROXY_IOC_NEW_DEV succeeds from 8 threads at once",
	},
	[CHECK_REGISTERS] = {
		"every device registers while other devices come and go, unless its emulator is late",
	},

	[CHECK_TPMRM_RESULT] = {
		"TPM2_GetRandom through /dev/tpmrmN returns a well-formed response, ENOENT/ENXIO/ENODEV/EPIPE once the device goes, or ETIME when its emulator is late",
	},
	[CHECK_TPMRM_SUCCEEDS] = {
		"TPM2_GetRandom through /dev/tpmrmN of a live device succeeds at least once per 20 tries",
	},
	[CHECK_SYSFS_READ] = {
		"reads of /sys/class/tpm/tpmN/* return while the device may go away",
	},
	[CHECK_HWRNG_RESULT] = {
		"reads of /dev/hwrng return bytes, ENODEV/EPIPE/EIO once the current tpm-rng goes, or ETIME when its emulator is late",
	},
	[CHECK_HWRNG_SUCCEEDS] = {
		"a tpm-rng-N made current serves /dev/hwrng at least once",
		.optional = true,
	},
	[CHECK_NO_HANG] = {
		"no thread spends more than 20 s in one call",
	},
};

/**
 * struct worker - one thread of the lane, watched by the watchdog
 * @index:    position in the lane's workers
 * @thread:   the thread
 * @random:   its own stream of random numbers
 * @call:     the call in progress, for the watchdog's report; protected by
 *            the lane's lock
 * @since_ms: when @call started, or 0 between calls; protected by the
 *            lane's lock
 * @lives:    device lives still to run (creators)
 */
struct worker {
	unsigned int index;
	pthread_t thread;
	struct stress_random random;
	char call[96];
	__u64 since_ms;
	unsigned long lives;
};

/**
 * struct live_device - a registered device that users may pick
 * @num:  N of /dev/tpmN, or -1 when the slot is empty
 * @tpm2: a TPM 2.0 device
 */
struct live_device {
	int num;
	bool tpm2;
};

/* Protects live, worker.call, worker.since_ms and the tallies below. */
static pthread_mutex_t lane_lock = PTHREAD_MUTEX_INITIALIZER;
static struct live_device live[NR_CREATORS];
static struct worker workers[NR_WORKERS];
static int stopping;
static int creators_left = NR_CREATORS;

/* Outcomes, for the lane's summary; protected by lane_lock. */
static unsigned long tpmrm_successes, tpmrm_tries, tpmrm_gone, tpmrm_late;
static unsigned long sysfs_reads, sysfs_errors, sysfs_gone;
static unsigned long hwrng_successes, hwrng_errors, rng_switches;
static unsigned long registration_timeouts;

static __printf(2, 3) void begin_call(struct worker *worker, const char *fmt, ...)
{
	va_list args;

	pthread_mutex_lock(&lane_lock);
	va_start(args, fmt);
	vsnprintf(worker->call, sizeof(worker->call), fmt, args);
	va_end(args);
	worker->since_ms = now_ms();
	pthread_mutex_unlock(&lane_lock);
}

static void end_call(struct worker *worker)
{
	pthread_mutex_lock(&lane_lock);
	worker->since_ms = 0;
	pthread_mutex_unlock(&lane_lock);
}

static bool lane_stopping(void)
{
	return __atomic_load_n(&stopping, __ATOMIC_ACQUIRE);
}

/* Pick a live device, a TPM 2.0 one with @tpm2_only; false if none. */
static bool pick_live(struct worker *worker, bool tpm2_only,
		      struct live_device *picked)
{
	unsigned int start = random_below(&worker->random, NR_CREATORS), i;
	bool found = false;

	pthread_mutex_lock(&lane_lock);
	for (i = 0; i < NR_CREATORS && !found; i++) {
		struct live_device *device = &live[(start + i) % NR_CREATORS];

		if (device->num >= 0 && (device->tpm2 || !tpm2_only)) {
			*picked = *device;
			found = true;
		}
	}
	pthread_mutex_unlock(&lane_lock);
	return found;
}

/* Device lives that the creators have still to run. */
static unsigned long lives_left(void)
{
	unsigned long left = 0;
	unsigned int i;

	for (i = 0; i < NR_CREATORS; i++)
		left += __atomic_load_n(&workers[i].lives, __ATOMIC_RELAXED);
	return left;
}

static void publish(unsigned int slot, int num, bool tpm2)
{
	pthread_mutex_lock(&lane_lock);
	live[slot].num = num;
	live[slot].tpm2 = tpm2;
	pthread_mutex_unlock(&lane_lock);
}

/*
 * Whether the registration of @dev failed because a start-up command
 * timed out: the TPM core then logs ETIME for the device. With 12 busy
 * threads on a guest's 2 CPUs, an emulator thread may be too late for
 * the TPM core's duration of a command (750 ms for TPM2_GetCapability).
 */
static bool registration_timed_out(int kmsg, const struct stress_dev *dev)
{
	return kmsg >= 0 &&
	       kmsg_contains(kmsg, "tpm%u: tpm_try_transmit: send(): error %d",
			     dev->num, -ETIME);
}

/* One device life: create, register, serve a while, close. */
static void creator_life(struct worker *worker, int vtpmx)
{
	bool tpm2 = random_percent(&worker->random, 75);
	unsigned int live_ms = random_below(&worker->random, MAX_LIVE_MS);
	struct stress_dev dev;
	int kmsg, rc;
	__u64 until;

	begin_call(worker, "VTPM_PROXY_IOC_NEW_DEV");
	kmsg = kmsg_open();
	rc = stress_dev_create(vtpmx, tpm2, &dev);
	end_call(worker);
	if (!check_true(&checks[CHECK_CREATE], rc == 0, "creator %u: %s",
			worker->index, strerror(-rc))) {
		if (kmsg >= 0)
			close(kmsg);
		return;
	}

	begin_call(worker, "registering tpm%u", dev.num);
	rc = stress_dev_register(&dev, STRESS_WAIT_MS);
	end_call(worker);
	if (rc == -EPIPE && registration_timed_out(kmsg, &dev)) {
		pthread_mutex_lock(&lane_lock);
		registration_timeouts++;
		pthread_mutex_unlock(&lane_lock);
	} else if (check_true(&checks[CHECK_REGISTERS], rc == 0,
			      "creator %u, TPM %s tpm%u: %s", worker->index,
			      tpm2 ? "2.0" : "1.2", dev.num, strerror(-rc))) {
		publish(worker->index, dev.num, tpm2);
		until = now_ms() + live_ms;
		while (now_ms() < until && rc >= 0) {
			begin_call(worker, "serving tpm%u", dev.num);
			rc = stress_dev_serve(&dev, 5);
			end_call(worker);
		}
		publish(worker->index, -1, false);
	}

	begin_call(worker, "close() of the server fd of tpm%u", dev.num);
	stress_dev_close(&dev);
	end_call(worker);
	if (kmsg >= 0)
		close(kmsg);
}

static void *creator_main(void *arg)
{
	struct worker *worker = arg;
	int vtpmx = vtpmx_open();

	if (vtpmx < 0) {
		check_fail(&checks[CHECK_CREATE], "opening /dev/vtpmx: %s",
			   strerror(-vtpmx));
	} else {
		while (worker->lives && !lane_stopping()) {
			creator_life(worker, vtpmx);
			__atomic_sub_fetch(&worker->lives, 1, __ATOMIC_RELAXED);
		}
		close(vtpmx);
	}
	__atomic_sub_fetch(&creators_left, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Send TPM2_GetRandom through /dev/tpmrmN of a live device. */
static void tpmrm_try(struct worker *worker)
{
	__u8 command[16], response[VTPM_BUFSIZE];
	struct live_device device;
	char path[64];
	size_t length;
	ssize_t n = -1;
	int fd, error = 0;
	bool gone;

	if (!pick_live(worker, true, &device)) {
		sleep_ms(1);
		return;
	}
	tpm_path(path, sizeof(path), "tpmrm", device.num);

	begin_call(worker, "open() of %s", path);
	fd = open(path, O_RDWR | O_CLOEXEC);
	error = fd < 0 ? errno : 0;
	end_call(worker);
	if (fd >= 0) {
		length = tpm_getrandom_command(true, STRESS_RANDOM_BYTES,
					       command);
		begin_call(worker, "TPM2_GetRandom through %s", path);
		n = write(fd, command, length);
		if (n == (ssize_t)length)
			n = read(fd, response, sizeof(response));
		error = n < 0 ? errno : 0;
		end_call(worker);
		close(fd);
	}

	gone = error == ENOENT || error == ENXIO || error == ENODEV ||
	       error == EPIPE;
	pthread_mutex_lock(&lane_lock);
	tpmrm_tries++;
	tpmrm_gone += gone;
	tpmrm_late += error == ETIME;
	pthread_mutex_unlock(&lane_lock);
	if (error) {
		check_true(&checks[CHECK_TPMRM_RESULT], gone || error == ETIME,
			   "%s: %s", path, strerror(error));
		return;
	}
	if (check_true(&checks[CHECK_TPMRM_RESULT],
		       tpm_getrandom_response_ok(true, response, n),
		       "%s: malformed or failed response of %zd bytes", path,
		       n)) {
		pthread_mutex_lock(&lane_lock);
		tpmrm_successes++;
		pthread_mutex_unlock(&lane_lock);
	}
}

static void *tpmrm_main(void *arg)
{
	struct worker *worker = arg;

	while (!lane_stopping())
		tpmrm_try(worker);
	return NULL;
}

/* Read one sysfs file of a chip; returns 0 or the errno. */
static int read_attribute(struct worker *worker, const char *path)
{
	char buffer[4096];
	int fd, error = 0;

	begin_call(worker, "reading %s", path);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		error = errno;
	} else {
		if (read(fd, buffer, sizeof(buffer)) < 0)
			error = errno;
		close(fd);
	}
	end_call(worker);
	return error;
}

/*
 * Read every file in /sys/class/tpm/tpmN/ and in its PCR bank folders.
 * Reading a PCR, the capabilities or the PCR list of a TPM 1.2 sends a
 * command to the device. Attributes whose command fails report their own
 * errors (EIO, EINVAL and others); only a read that does not return is a
 * failure here, and that is the watchdog's to catch.
 */
static void sysfs_walk(struct worker *worker, const char *folder,
		       unsigned int depth)
{
	struct dirent *entry;
	char path[512];
	int error;
	DIR *dir;

	dir = opendir(folder);
	if (!dir)
		return;
	while ((entry = readdir(dir)) && !lane_stopping()) {
		if (entry->d_name[0] == '.' ||
		    !strcmp(entry->d_name, "subsystem") ||
		    !strcmp(entry->d_name, "power") ||
		    !strcmp(entry->d_name, "uevent"))
			continue;
		snprintf(path, sizeof(path), "%s/%s", folder, entry->d_name);
		if (entry->d_type == DT_DIR) {
			if (depth == 0)
				sysfs_walk(worker, path, depth + 1);
			continue;
		}
		/* Sample PCRs, or a TPM 2.0 read takes 24 commands a bank. */
		if (depth > 0 && random_percent(&worker->random, 75))
			continue;
		error = read_attribute(worker, path);
		check_pass(&checks[CHECK_SYSFS_READ]);
		pthread_mutex_lock(&lane_lock);
		sysfs_reads++;
		sysfs_errors += error != 0;
		sysfs_gone += error == ENOENT || error == ENODEV;
		pthread_mutex_unlock(&lane_lock);
	}
	closedir(dir);
}

static void *sysfs_main(void *arg)
{
	struct worker *worker = arg;
	struct live_device device;
	char folder[64];

	while (!lane_stopping()) {
		if (!pick_live(worker, false, &device)) {
			sleep_ms(1);
			continue;
		}
		snprintf(folder, sizeof(folder), "/sys/class/tpm/tpm%d",
			 device.num);
		sysfs_walk(worker, folder, 0);
	}
	return NULL;
}

/* Make tpm-rng-N of a live device the current hardware RNG. */
static void choose_tpm_rng(struct worker *worker)
{
	const char *path = "/sys/class/misc/hw_random/rng_current";
	struct live_device device;
	char name[32];
	int fd, length;

	if (!pick_live(worker, false, &device))
		return;
	length = snprintf(name, sizeof(name), "tpm-rng-%d", device.num);
	begin_call(worker, "writing %s to %s", name, path);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		if (write(fd, name, length) == length) {
			pthread_mutex_lock(&lane_lock);
			rng_switches++;
			pthread_mutex_unlock(&lane_lock);
		}
		close(fd);
	}
	end_call(worker);
}

static void *hwrng_main(void *arg)
{
	struct worker *worker = arg;
	__u8 bytes[16];
	ssize_t n;
	int fd, error;

	while (!lane_stopping()) {
		choose_tpm_rng(worker);
		begin_call(worker, "reading /dev/hwrng");
		fd = open("/dev/hwrng", O_RDONLY | O_CLOEXEC);
		n = fd < 0 ? -1 : read(fd, bytes, sizeof(bytes));
		error = n < 0 ? errno : 0;
		if (fd >= 0)
			close(fd);
		end_call(worker);

		check_true(&checks[CHECK_HWRNG_RESULT],
			   n > 0 || error == ENODEV || error == EPIPE ||
			   error == EIO || error == ETIME,
			   "/dev/hwrng: read() returned %zd (%s)", n,
			   strerror(error));
		pthread_mutex_lock(&lane_lock);
		hwrng_successes += n > 0;
		hwrng_errors += n <= 0;
		pthread_mutex_unlock(&lane_lock);
		sleep_ms(random_below(&worker->random, 5));
	}
	return NULL;
}

/* Report a worker stuck in one call and stop the lane; false if none. */
static bool find_hung_worker(void)
{
	unsigned int i;
	__u64 now;

	pthread_mutex_lock(&lane_lock);
	now = now_ms();
	for (i = 0; i < NR_WORKERS; i++) {
		struct worker *worker = &workers[i];

		if (worker->since_ms &&
		    now - worker->since_ms > STRESS_WAIT_MS) {
			pthread_mutex_unlock(&lane_lock);
			check_fail(&checks[CHECK_NO_HANG],
				   "thread %u hangs in %s for %llu ms", i,
				   worker->call,
				   (unsigned long long)(now - worker->since_ms));
			return true;
		}
	}
	pthread_mutex_unlock(&lane_lock);
	return false;
}

static int start_worker(unsigned int index, void *(*run)(void *),
			__u64 seed)
{
	struct worker *worker = &workers[index];

	worker->index = index;
	random_init(&worker->random, seed, index);
	return pthread_create(&worker->thread, NULL, run, worker);
}

/*
 * The lane means to use live devices, not only dying ones: when fewer
 * than one command in 20 finds its device alive, it has tested little
 * but teardown. In TCG guests 80 to 90 % of the commands succeeded.
 */
static void check_tallies(void)
{
	check_true(&checks[CHECK_TPMRM_SUCCEEDS],
		   tpmrm_successes * 20 >= tpmrm_tries,
		   "%lu of %lu commands succeeded", tpmrm_successes,
		   tpmrm_tries);
	if (rng_switches)
		check_true(&checks[CHECK_HWRNG_SUCCEEDS], hwrng_successes > 0,
			   "no read of /dev/hwrng succeeded in %lu tries",
			   hwrng_successes + hwrng_errors);
	stress_info("registrations that failed because the emulator was late for a start-up command (ETIME): %lu",
		    registration_timeouts);
	stress_info("/dev/tpmrmN: %lu commands, %lu succeeded, %lu found the device gone, %lu timed out",
		    tpmrm_tries, tpmrm_successes, tpmrm_gone, tpmrm_late);
	stress_info("sysfs: %lu reads, %lu errors (%lu ENOENT or ENODEV); /dev/hwrng: %lu reads with bytes, %lu without, tpm-rng made current %lu times",
		    sysfs_reads, sysfs_errors, sysfs_gone, hwrng_successes,
		    hwrng_errors, rng_switches);
}

int lane_threads(const struct lane_options *options)
{
	unsigned long lives = options->count;
	unsigned int i;
	__u64 start;

	for (i = 0; i < NR_CREATORS; i++) {
		live[i].num = -1;
		/* Share the lives out; the first creators take the rest. */
		workers[i].lives = lives / NR_CREATORS +
				   (i < lives % NR_CREATORS);
	}

	start = now_ms();
	for (i = 0; i < NR_WORKERS; i++) {
		void *(*run)(void *) = i < NR_CREATORS ? creator_main :
				       i < SYSFS_WORKER ? tpmrm_main :
				       i == SYSFS_WORKER ? sysfs_main :
				       hwrng_main;

		if (start_worker(i, run, options->seed)) {
			perror("pthread_create");
			return 1;
		}
	}

	while (__atomic_load_n(&creators_left, __ATOMIC_ACQUIRE)) {
		if (find_hung_worker())
			stress_give_up(checks, NR_CHECKS,
				       "a thread hangs in the kernel");
		sleep_ms(100);
		stress_progress(lives - lives_left(), lives);
	}
	__atomic_store_n(&stopping, 1, __ATOMIC_RELEASE);

	for (i = 0; i < NR_WORKERS; i++) {
		while (pthread_tryjoin_np(workers[i].thread, NULL)) {
			if (find_hung_worker())
				stress_give_up(checks, NR_CHECKS,
					       "a thread hangs in the kernel");
			sleep_ms(10);
		}
	}
	check_pass(&checks[CHECK_NO_HANG]);

	stress_info("%lu device lives in %llu ms", lives,
		    (unsigned long long)(now_ms() - start));
	check_tallies();
	return check_report(checks, NR_CHECKS) ? 1 : 0;
}

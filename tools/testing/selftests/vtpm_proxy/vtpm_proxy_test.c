// SPDX-License-Identifier: GPL-2.0
/*
 * Tests of the vTPM proxy driver: the /dev/vtpmx ioctl, the server fd, the
 * TPM chip that the TPM core registers, the device's lifetime and bad
 * input. Each test runs once for a TPM 1.2 and once for a TPM 2.0 chip.
 *
 * Every device is served by the test emulator (vtpm_emulator.c), which
 * records the commands that reach it. The TPM core's hwrng reads random
 * bytes through each chip in the background, so a TPM_GetRandom or
 * TPM2_GetRandom may arrive at any time: tests that look at the sequence
 * of commands skip those.
 *
 * Needs root and the tpm_vtpm_proxy module loaded. The module unload test
 * reloads the module from the path in VTPM_PROXY_MODULE.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <linux/capability.h>

#include "kselftest_harness.h"
#include "vtpm_emulator.h"

#ifndef MODULE_INIT_COMPRESSED_FILE
#define MODULE_INIT_COMPRESSED_FILE	4
#endif

#define MODULE_NAME		"tpm_vtpm_proxy"

/*
 * Bounds for waiting on the kernel. They only stop a test that would
 * otherwise hang; the guests run under TCG, where everything is slow.
 */
#define REGISTER_TIMEOUT_MS	20000
#define HANGUP_TIMEOUT_MS	20000
#define COMMAND_TIMEOUT_MS	10000
#define WAIT_STEP_MS		5

/* A stuck emulator must not delay another device's registration this long. */
#define INDEPENDENCE_BOUND_MS	5000
/* A blocked client must fail this soon after the server fd is closed. */
#define CLOSE_BOUND_MS		1000

/* The TPM core's fixed TPM 2.0 duration for TPM2_GetCapability. */
#define TPM2_MEDIUM_DURATION_MS	750
/*
 * TPM 1.2 durations that the emulator reports in timeout tests, so that a
 * TPM_GetCapability (a "short" ordinal) times out quickly.
 */
#define TPM1_SHORT_DURATION_MS	300

/*
 * Ordinals that the TPM core has no duration for: it waits 2 minutes for
 * them, so a client sending one to a stuck emulator stays blocked.
 */
#define TPM2_CC_UNLISTED	0x000001ff
#define TPM_ORD_UNLISTED	0x00000100

#define NR_MANY_DEVICES		1000
/*
 * Devices created and registered together in the thousand-device test.
 * Registrations run in parallel, and a few hundred of them at once on two
 * emulated CPUs leave the emulator thread so little CPU time that the TPM
 * core's 750 ms TPM 2.0 durations run out.
 */
#define MANY_DEVICES_BATCH	10
#define NR_CYCLES		1000
#define NR_LOGGED_FAILURES	30
/* Devices closed right after a response, and responses before the close. */
#define NR_CLOSE_RACES		20
#define MAX_RESPONSES_BEFORE_CLOSE	2
/* Threads that keep every CPU busy, at most. */
#define MAX_CPU_HOGS		64

/**
 * struct device - one vTPM proxy device under test
 * @info:    result of %VTPM_PROXY_IOC_NEW_DEV
 * @emu:     the emulator behind the server fd (@emu.fd)
 * @server:  the thread that serves @emu, when device_serve() started it
 * @created: the ioctl succeeded
 */
struct device {
	struct vtpm_proxy_new_dev info;
	struct vtpm_emulator emu;
	struct vtpm_server server;
	bool created;
};

static void device_init(struct device *dev, bool tpm2)
{
	memset(dev, 0, sizeof(*dev));
	vtpm_emulator_init(&dev->emu, tpm2);
}

/* Create the device on /dev/vtpmx; returns 0 or -errno of the ioctl. */
static int device_create(int vtpmx, struct device *dev)
{
	dev->info.flags = dev->emu.tpm2 ? VTPM_PROXY_FLAG_TPM2 : 0;
	if (ioctl(vtpmx, VTPM_PROXY_IOC_NEW_DEV, &dev->info))
		return -errno;
	dev->created = true;
	dev->emu.fd = dev->info.fd;
	snprintf(dev->emu.name, sizeof(dev->emu.name), "tpm%u",
		 dev->info.tpm_num);
	return 0;
}

static int device_serve(struct device *dev)
{
	return vtpm_emulator_start(&dev->emu, &dev->server);
}

static void device_stop(struct device *dev)
{
	vtpm_server_stop(&dev->server);
}

/* Close the server fd, which tears the device down. */
static void device_close(struct device *dev)
{
	device_stop(dev);
	vtpm_emulator_close(&dev->emu);
}

static void device_fini(struct device *dev)
{
	device_stop(dev);
	vtpm_emulator_destroy(&dev->emu);
}

/* Start over with a fresh emulator, for tests that make many devices. */
static void device_reset(struct device *dev, bool tpm2)
{
	device_fini(dev);
	device_init(dev, tpm2);
}

static void node_path(char *path, size_t size, const char *kind,
		      unsigned int num)
{
	snprintf(path, size, "/dev/%s%u", kind, num);
}

static void sysfs_path(char *path, size_t size, unsigned int num,
		       const char *file)
{
	snprintf(path, size, "/sys/class/tpm/tpm%u%s%s", num,
		 *file ? "/" : "", file);
}

static bool path_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static long elapsed_ms(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - start->tv_sec) * 1000 +
	       (now.tv_nsec - start->tv_nsec) / 1000000;
}

static void sleep_ms(long ms)
{
	struct timespec step = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&step, &step) && errno == EINTR)
		;
}

/* Wait until @path exists (or, with @present false, is gone). */
static bool wait_for_path(const char *path, bool present, int timeout_ms)
{
	struct timespec start;

	clock_gettime(CLOCK_MONOTONIC, &start);
	while (path_exists(path) != present) {
		if (elapsed_ms(&start) >= timeout_ms)
			return false;
		sleep_ms(WAIT_STEP_MS);
	}
	return true;
}

/*
 * Wait until the device's nodes exist: /dev/tpmN, and /dev/tpmrmN for
 * TPM 2.0. False on timeout, or as soon as the device dies.
 */
static bool device_wait_registered(struct device *dev, int timeout_ms)
{
	char tpm[32], tpmrm[32];
	struct timespec start;

	node_path(tpm, sizeof(tpm), "tpm", dev->info.tpm_num);
	node_path(tpmrm, sizeof(tpmrm), "tpmrm", dev->info.tpm_num);
	clock_gettime(CLOCK_MONOTONIC, &start);
	while (!path_exists(tpm) || (dev->emu.tpm2 && !path_exists(tpmrm))) {
		if (vtpm_emulator_is_dead(&dev->emu) ||
		    elapsed_ms(&start) >= timeout_ms)
			return false;
		sleep_ms(WAIT_STEP_MS);
	}
	return true;
}

/* Wait until neither node nor sysfs folder of chip @num exists. */
static bool wait_unregistered(unsigned int num, int timeout_ms)
{
	char tpm[32], tpmrm[32], sysfs[64];

	node_path(tpm, sizeof(tpm), "tpm", num);
	node_path(tpmrm, sizeof(tpmrm), "tpmrm", num);
	sysfs_path(sysfs, sizeof(sysfs), num, "");
	return wait_for_path(tpm, false, timeout_ms) &&
	       wait_for_path(tpmrm, false, timeout_ms) &&
	       wait_for_path(sysfs, false, timeout_ms);
}

static int count_open_fds(void)
{
	struct dirent *entry;
	int count = 0;
	DIR *dir;

	dir = opendir("/proc/self/fd");
	if (!dir)
		return -errno;
	while ((entry = readdir(dir)))
		if (entry->d_name[0] != '.')
			count++;
	closedir(dir);
	/* The directory stream's own fd is not counted. */
	return count - 1;
}

static ssize_t read_file(const char *path, char *buf, size_t size)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, size - 1);
	if (n < 0)
		n = -errno;
	else
		buf[n] = '\0';
	close(fd);
	return n;
}

/* Return N of the tpm-rng-N that the hwrng core uses, or UINT_MAX. */
static unsigned int current_hwrng_chip(void)
{
	unsigned int num;
	char text[64];

	if (read_file("/sys/class/misc/hw_random/rng_current", text,
		      sizeof(text)) < 0 ||
	    sscanf(text, "tpm-rng-%u", &num) != 1)
		return UINT_MAX;
	return num;
}

/* Raise the soft limit on open files, for tests with many devices. */
static int raise_fd_limit(rlim_t needed)
{
	struct rlimit limit;

	if (getrlimit(RLIMIT_NOFILE, &limit))
		return -errno;
	if (limit.rlim_cur >= needed)
		return 0;
	limit.rlim_cur = needed;
	if (limit.rlim_max < needed)
		limit.rlim_max = needed;
	return setrlimit(RLIMIT_NOFILE, &limit) ? -errno : 0;
}

/*
 * A command from a client of /dev/tpmN: TPM2_GetCapability for the number
 * of commands, or TPM_GetCapability for the number of PCRs.
 */
static size_t client_command(bool tpm2, __u8 *buf)
{
	static const __u8 tpm2_get_capability[] = {
		0x80, 0x01, 0x00, 0x00, 0x00, 0x16, 0x00, 0x00, 0x01, 0x7a,
		0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x01, 0x29,
		0x00, 0x00, 0x00, 0x01,
	};
	static const __u8 tpm1_get_capability[] = {
		0x00, 0xc1, 0x00, 0x00, 0x00, 0x16, 0x00, 0x00, 0x00, 0x65,
		0x00, 0x00, 0x00, 0x05, 0x00, 0x00, 0x00, 0x04,
		0x00, 0x00, 0x01, 0x01,
	};

	if (tpm2) {
		memcpy(buf, tpm2_get_capability, sizeof(tpm2_get_capability));
		return sizeof(tpm2_get_capability);
	}
	memcpy(buf, tpm1_get_capability, sizeof(tpm1_get_capability));
	return sizeof(tpm1_get_capability);
}

static __u32 client_ordinal(bool tpm2)
{
	return tpm2 ? TPM2_CC_GET_CAPABILITY : TPM_ORD_GET_CAPABILITY;
}

/* A header-only command with an ordinal the TPM core waits 2 minutes for. */
static size_t unlisted_command(bool tpm2, __u8 *buf)
{
	__u32 ordinal = tpm2 ? TPM2_CC_UNLISTED : TPM_ORD_UNLISTED;
	__u16 tag = tpm2 ? TPM2_ST_NO_SESSIONS : TPM_TAG_RQU_COMMAND;

	buf[0] = tag >> 8;
	buf[1] = tag;
	buf[2] = 0;
	buf[3] = 0;
	buf[4] = 0;
	buf[5] = TPM_HEADER_SIZE;
	buf[6] = ordinal >> 24;
	buf[7] = ordinal >> 16;
	buf[8] = ordinal >> 8;
	buf[9] = ordinal;
	return TPM_HEADER_SIZE;
}

static size_t set_locality_command(bool tpm2, __u8 *buf)
{
	static const __u8 tpm2_set_locality[] = {
		0x80, 0x02, 0x00, 0x00, 0x00, 0x0b, 0x20, 0x00, 0x10, 0x00,
		0x00,
	};
	static const __u8 tpm1_set_locality[] = {
		0x00, 0xc1, 0x00, 0x00, 0x00, 0x0b, 0x20, 0x00, 0x10, 0x00,
		0x00,
	};

	memcpy(buf, tpm2 ? tpm2_set_locality : tpm1_set_locality,
	       sizeof(tpm2_set_locality));
	return sizeof(tpm2_set_locality);
}

static __u32 response_code(const __u8 *response)
{
	return (__u32)response[6] << 24 | (__u32)response[7] << 16 |
	       (__u32)response[8] << 8 | response[9];
}

/*
 * Send one command through a TPM node and read the response. Returns the
 * response length, or -errno of whichever call failed.
 */
static ssize_t transmit(const char *path, const __u8 *command, size_t length,
			__u8 *response, size_t size)
{
	ssize_t n;
	int fd;

	fd = open(path, O_RDWR);
	if (fd < 0)
		return -errno;
	n = write(fd, command, length);
	if (n < 0) {
		n = -errno;
	} else {
		n = read(fd, response, size);
		if (n < 0)
			n = -errno;
	}
	close(fd);
	return n;
}

/* Find the last record with @ordinal; false if there is none. */
static bool last_record(struct vtpm_emulator *emu, __u32 ordinal,
			struct vtpm_record *record)
{
	struct vtpm_record candidate;
	bool found = false;
	size_t i;

	for (i = 0; vtpm_emulator_get_record(emu, i, &candidate); i++) {
		if (candidate.ordinal == ordinal) {
			*record = candidate;
			found = true;
		}
	}
	return found;
}

/*
 * A client that sends one command from its own thread and keeps the
 * outcome, for commands that block.
 */
struct client {
	pthread_t thread;
	char path[32];
	__u8 command[64];
	size_t length;
	__u8 response[VTPM_BUFSIZE];
	ssize_t result;
	struct timespec done;
	atomic_bool finished;
};

static void *client_main(void *arg)
{
	struct client *client = arg;

	client->result = transmit(client->path, client->command,
				  client->length, client->response,
				  sizeof(client->response));
	clock_gettime(CLOCK_MONOTONIC, &client->done);
	atomic_store(&client->finished, true);
	return NULL;
}

static int client_start(struct client *client, const char *path,
			const __u8 *command, size_t length)
{
	memset(client, 0, sizeof(*client));
	snprintf(client->path, sizeof(client->path), "%s", path);
	memcpy(client->command, command, length);
	client->length = length;
	return -pthread_create(&client->thread, NULL, client_main, client);
}

static atomic_int signals_caught;

static void count_signal(int signo)
{
	atomic_fetch_add(&signals_caught, 1);
}

/* Catch @signo without SA_RESTART unless @restart, so calls see EINTR. */
static int catch_signal(int signo, bool restart)
{
	struct sigaction action = {
		.sa_handler = count_signal,
		.sa_flags = restart ? SA_RESTART : 0,
	};

	atomic_store(&signals_caught, 0);
	sigemptyset(&action.sa_mask);
	return sigaction(signo, &action, NULL);
}

/* Deliver SIGALRM once after @ms milliseconds. */
static int alarm_after_ms(long ms)
{
	struct itimerval timer = {
		.it_value = { ms / 1000, (ms % 1000) * 1000 },
	};

	return setitimer(ITIMER_REAL, &timer, NULL);
}

static bool contains(const char *text, const char *part)
{
	return strstr(text, part);
}

static bool is_dead_errno(int err)
{
	return err == EPIPE || err == ECANCELED;
}

/* Print what the emulator received, to explain a failed check. */
static void dump_records(struct __test_metadata *_metadata,
			 struct vtpm_emulator *emu)
{
	struct vtpm_record record;
	size_t i;

	for (i = 0; vtpm_emulator_get_record(emu, i, &record); i++)
		TH_LOG("%s command %zu: ordinal 0x%08x, %zu bytes, fault %s, last write %zd",
		       emu->name, i, record.ordinal, record.length,
		       vtpm_fault_name(record.fault), record.write_result);
}

FIXTURE(vtpm) {
	int vtpmx;
	struct device dev;
	struct device *others;
	size_t nr_others;
	struct vtpm_server *servers;
	size_t nr_servers;
};

FIXTURE_VARIANT(vtpm) {
	bool tpm2;
};

FIXTURE_VARIANT_ADD(vtpm, tpm12) {
	.tpm2 = false,
};

FIXTURE_VARIANT_ADD(vtpm, tpm2) {
	.tpm2 = true,
};

static void reload_module_if_unloaded(struct __test_metadata *_metadata);

FIXTURE_SETUP(vtpm)
{
	self->vtpmx = -1;
	device_init(&self->dev, variant->tpm2);

	if (geteuid() != 0)
		SKIP(return, "needs root to open /dev/vtpmx");
	self->vtpmx = open("/dev/vtpmx", O_RDWR | O_CLOEXEC);
	if (self->vtpmx < 0 && errno == ENOENT)
		SKIP(return, "/dev/vtpmx not found: load the %s module",
		     MODULE_NAME);
	ASSERT_LE(0, self->vtpmx) {
		TH_LOG("cannot open /dev/vtpmx: %s", strerror(errno));
	}
}

FIXTURE_TEARDOWN(vtpm)
{
	size_t i;

	/*
	 * The main device first: it may be the stuck one that the others'
	 * registrations wait behind.
	 */
	device_fini(&self->dev);
	for (i = 0; i < self->nr_servers; i++)
		vtpm_server_stop(&self->servers[i]);
	free(self->servers);
	for (i = self->nr_others; i > 0; i--)
		device_fini(&self->others[i - 1]);
	free(self->others);
	if (self->vtpmx >= 0)
		close(self->vtpmx);
	reload_module_if_unloaded(_metadata);
}

/* Allocate @n devices for a test that needs more than one. */
static struct device *add_others(struct __test_metadata *_metadata,
				 struct device **others, size_t *nr_others,
				 bool tpm2, size_t n)
{
	size_t i;

	*others = calloc(n, sizeof(**others));
	ASSERT_TRUE(!!*others);
	for (i = 0; i < n; i++)
		device_init(&(*others)[i], tpm2);
	*nr_others = n;
	return *others;
}

/* Create @dev, serve it and wait until its nodes appear. */
static void create_registered(struct __test_metadata *_metadata, int vtpmx,
			      struct device *dev)
{
	ASSERT_EQ(0, device_create(vtpmx, dev));
	ASSERT_EQ(0, device_serve(dev));
	ASSERT_TRUE(device_wait_registered(dev, REGISTER_TIMEOUT_MS)) {
		dump_records(_metadata, &dev->emu);
	}
}

/*
 * Create a device and close it unserved; return its chip number, which is
 * the lowest number free at the time.
 */
static unsigned int probe_free_number(struct __test_metadata *_metadata,
				      int vtpmx, bool tpm2)
{
	struct device probe;
	unsigned int num;

	device_init(&probe, tpm2);
	EXPECT_EQ(0, device_create(vtpmx, &probe));
	num = probe.info.tpm_num;
	device_fini(&probe);
	return num;
}

/*
 * Round trip a client command through /dev/tpmN and check that the client
 * gets exactly the response that the emulator sent.
 */
static void check_round_trip(struct __test_metadata *_metadata,
			     struct device *dev, const char *kind)
{
	__u8 command[64], response[VTPM_BUFSIZE];
	bool tpm2 = dev->emu.tpm2;
	struct vtpm_record record;
	size_t length;
	char path[32];
	ssize_t n;

	node_path(path, sizeof(path), kind, dev->info.tpm_num);
	length = client_command(tpm2, command);
	n = transmit(path, command, length, response, sizeof(response));
	ASSERT_LT(0, n) {
		TH_LOG("command through %s failed: %s", path, strerror(-n));
	}
	ASSERT_TRUE(last_record(&dev->emu, client_ordinal(tpm2), &record));
	ASSERT_EQ(record.response_length, n);
	ASSERT_EQ(0, memcmp(record.response, response, n));
	ASSERT_EQ(0, response_code(response));
}

/* Drop CAP_SYS_ADMIN from this thread's effective capabilities. */
static int drop_cap_sys_admin(void)
{
	struct __user_cap_header_struct header = {
		.version = _LINUX_CAPABILITY_VERSION_3,
	};
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	if (syscall(SYS_capget, &header, data))
		return -errno;
	data[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective &=
		~CAP_TO_MASK(CAP_SYS_ADMIN);
	if (syscall(SYS_capset, &header, data))
		return -errno;
	return 0;
}

/* The child could not prepare: its exit status is this plus the errno. */
#define PREPARE_FAILED	128

/*
 * Run NEW_DEV in a child process after @prepare. Returns the errno of the
 * ioctl, or 0 if it succeeded. If @prepare failed, returns its errno plus
 * %PREPARE_FAILED.
 */
static int new_dev_errno_in_child(int vtpmx, bool tpm2, int (*prepare)(void))
{
	struct vtpm_proxy_new_dev dev = {
		.flags = tpm2 ? VTPM_PROXY_FLAG_TPM2 : 0,
	};
	int status;
	pid_t pid;

	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		int rc = prepare();

		if (rc)
			_exit(PREPARE_FAILED - rc);
		_exit(ioctl(vtpmx, VTPM_PROXY_IOC_NEW_DEV, &dev) ? errno : 0);
	}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -ECHILD;
	return WEXITSTATUS(status);
}

TEST_F(vtpm, new_dev_without_cap_sys_admin_fails_eperm)
{
	ASSERT_EQ(EPERM, new_dev_errno_in_child(self->vtpmx, variant->tpm2,
						drop_cap_sys_admin));
}

static int enter_user_namespace(void)
{
	return unshare(CLONE_NEWUSER) ? -errno : 0;
}

TEST_F(vtpm, new_dev_in_user_namespace_fails_eperm)
{
	int rc;

	/* In a new user namespace the child has CAP_SYS_ADMIN there only. */
	rc = new_dev_errno_in_child(self->vtpmx, variant->tpm2,
				    enter_user_namespace);
	if (rc > PREPARE_FAILED)
		SKIP(return, "cannot create a user namespace: %s",
		     strerror(rc - PREPARE_FAILED));
	ASSERT_EQ(EPERM, rc);
}

TEST_F(vtpm, new_dev_with_unreadable_argument_fails_efault)
{
	int fds_before = count_open_fds();
	unsigned int num;
	void *page;

	num = probe_free_number(_metadata, self->vtpmx, variant->tpm2);

	ASSERT_EQ(-1, ioctl(self->vtpmx, VTPM_PROXY_IOC_NEW_DEV, NULL));
	ASSERT_EQ(EFAULT, errno);

	page = mmap(NULL, getpagesize(), PROT_NONE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(page != MAP_FAILED);
	ASSERT_EQ(-1, ioctl(self->vtpmx, VTPM_PROXY_IOC_NEW_DEV, page));
	ASSERT_EQ(EFAULT, errno);
	munmap(page, getpagesize());

	ASSERT_EQ(fds_before, count_open_fds());
	ASSERT_EQ(num, probe_free_number(_metadata, self->vtpmx,
					 variant->tpm2));
}

TEST_F(vtpm, new_dev_with_unknown_flag_fails_eopnotsupp)
{
	int fds_before = count_open_fds();
	unsigned int num, bit;

	num = probe_free_number(_metadata, self->vtpmx, variant->tpm2);

	for (bit = 1; bit < 32; bit++) {
		struct vtpm_proxy_new_dev dev = {
			.flags = 1u << bit |
				 (variant->tpm2 ? VTPM_PROXY_FLAG_TPM2 : 0),
		};

		EXPECT_EQ(-1, ioctl(self->vtpmx, VTPM_PROXY_IOC_NEW_DEV, &dev)) {
			TH_LOG("flag bit %u was accepted", bit);
			close(dev.fd);
		}
		EXPECT_EQ(EOPNOTSUPP, errno) {
			TH_LOG("flag bit %u", bit);
		}
	}

	ASSERT_EQ(fds_before, count_open_fds());
	ASSERT_EQ(num, probe_free_number(_metadata, self->vtpmx,
					 variant->tpm2));
}

TEST_F(vtpm, new_dev_with_unwritable_result_fails_efault_without_leak)
{
	int fds_before = count_open_fds();
	struct vtpm_proxy_new_dev *dev;
	unsigned int num;
	char path[64];

	num = probe_free_number(_metadata, self->vtpmx, variant->tpm2);

	/* Readable, so the flags get in; read-only, so the result cannot. */
	dev = mmap(NULL, getpagesize(), PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	ASSERT_TRUE(dev != MAP_FAILED);
	dev->flags = variant->tpm2 ? VTPM_PROXY_FLAG_TPM2 : 0;
	ASSERT_EQ(0, mprotect(dev, getpagesize(), PROT_READ));

	ASSERT_EQ(-1, ioctl(self->vtpmx, VTPM_PROXY_IOC_NEW_DEV, dev));
	ASSERT_EQ(EFAULT, errno);
	munmap(dev, getpagesize());

	ASSERT_EQ(fds_before, count_open_fds());
	/* Registration would take a moment; give it one before looking. */
	sleep_ms(200);
	sysfs_path(path, sizeof(path), num, "");
	ASSERT_FALSE(path_exists(path));
	ASSERT_EQ(num, probe_free_number(_metadata, self->vtpmx,
					 variant->tpm2));
}

static int fill_fd_table(int *nr_dups, int *dups, int max_dups)
{
	struct rlimit limit;

	if (getrlimit(RLIMIT_NOFILE, &limit))
		return -errno;
	limit.rlim_cur = max_dups;
	if (setrlimit(RLIMIT_NOFILE, &limit))
		return -errno;
	*nr_dups = 0;
	while (*nr_dups < max_dups) {
		int fd = dup(0);

		if (fd < 0)
			return errno == EMFILE ? 0 : -errno;
		dups[(*nr_dups)++] = fd;
	}
	return -ENFILE;
}

TEST_F(vtpm, new_dev_without_free_fd_fails_emfile)
{
	struct vtpm_proxy_new_dev dev = {
		.flags = variant->tpm2 ? VTPM_PROXY_FLAG_TPM2 : 0,
	};
	int dups[64], nr_dups = 0, rc, i;
	struct rlimit saved;
	unsigned int num;

	num = probe_free_number(_metadata, self->vtpmx, variant->tpm2);
	ASSERT_EQ(0, getrlimit(RLIMIT_NOFILE, &saved));

	rc = fill_fd_table(&nr_dups, dups, 64);
	errno = 0;
	if (!rc && ioctl(self->vtpmx, VTPM_PROXY_IOC_NEW_DEV, &dev) == 0)
		close(dev.fd);
	rc = rc ? rc : errno;

	for (i = 0; i < nr_dups; i++)
		close(dups[i]);
	ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &saved));

	ASSERT_EQ(EMFILE, rc);
	ASSERT_EQ(num, probe_free_number(_metadata, self->vtpmx,
					 variant->tpm2));
}

TEST_F(vtpm, new_dev_fd_is_read_write_without_cloexec)
{
	int flags;

	ASSERT_EQ(0, device_create(self->vtpmx, &self->dev));

	flags = fcntl(self->dev.info.fd, F_GETFL);
	ASSERT_LE(0, flags);
	ASSERT_EQ(O_RDWR, flags & O_ACCMODE);

	flags = fcntl(self->dev.info.fd, F_GETFD);
	ASSERT_LE(0, flags);
	ASSERT_EQ(0, flags & FD_CLOEXEC);
}

TEST_F(vtpm, new_dev_reports_number_of_its_node)
{
	char path[64], text[32], expected[32];
	struct stat st;

	create_registered(_metadata, self->vtpmx, &self->dev);

	node_path(path, sizeof(path), "tpm", self->dev.info.tpm_num);
	ASSERT_EQ(0, stat(path, &st));
	ASSERT_TRUE(S_ISCHR(st.st_mode));
	ASSERT_EQ(self->dev.info.major, major(st.st_rdev));
	ASSERT_EQ(self->dev.info.minor, minor(st.st_rdev));

	sysfs_path(path, sizeof(path), self->dev.info.tpm_num, "dev");
	ASSERT_LT(0, read_file(path, text, sizeof(text)));
	snprintf(expected, sizeof(expected), "%u:%u\n", self->dev.info.major,
		 self->dev.info.minor);
	ASSERT_STREQ(expected, text);
}

TEST_F(vtpm, new_dev_returns_before_registration)
{
	char path[64];

	ASSERT_EQ(0, device_create(self->vtpmx, &self->dev));

	/* No emulator served the start-up commands yet, so there is no chip. */
	sysfs_path(path, sizeof(path), self->dev.info.tpm_num, "");
	ASSERT_FALSE(path_exists(path));

	ASSERT_EQ(0, device_serve(&self->dev));
	ASSERT_TRUE(device_wait_registered(&self->dev, REGISTER_TIMEOUT_MS));
}

TEST_F(vtpm, vtpmx_other_ioctl_fails_enotty)
{
	struct vtpm_proxy_new_dev dev = { 0 };
	int fds_before = count_open_fds();

	ASSERT_EQ(-1, ioctl(self->vtpmx,
			    _IOWR(0xa1, 0x01, struct vtpm_proxy_new_dev),
			    &dev));
	ASSERT_EQ(ENOTTY, errno);

	ASSERT_EQ(-1, ioctl(self->vtpmx, _IOR(0xa1, 0x00, __u32), &dev));
	ASSERT_EQ(ENOTTY, errno);

	ASSERT_EQ(-1, ioctl(self->vtpmx, FIONREAD, &dev));
	ASSERT_EQ(ENOTTY, errno);

	ASSERT_EQ(fds_before, count_open_fds());
}

TEST_F(vtpm, vtpmx_close_keeps_devices_alive)
{
	create_registered(_metadata, self->vtpmx, &self->dev);
	ASSERT_EQ(0, close(self->vtpmx));
	self->vtpmx = -1;

	check_round_trip(_metadata, &self->dev, "tpm");
}

/* Read the first command, SET_LOCALITY, by hand. */
static void read_set_locality(struct __test_metadata *_metadata,
			      struct device *dev)
{
	__u8 buf[VTPM_BUFSIZE];

	ASSERT_EQ(11, read(dev->emu.fd, buf, sizeof(buf)));
	ASSERT_EQ(TPM2_CC_SET_LOCALITY, vtpm_command_ordinal(buf, 11));
}

/* Respond to SET_LOCALITY with success, by hand. */
static void respond_to_set_locality(struct __test_metadata *_metadata,
				    struct device *dev)
{
	__u8 command[16], response[VTPM_BUFSIZE];
	size_t length;

	length = set_locality_command(dev->emu.tpm2, command);
	length = vtpm_emulator_respond(&dev->emu, command, length, response);
	ASSERT_EQ(length, write(dev->emu.fd, response, length));
}

TEST_F(vtpm, read_into_short_buffer_fails_eio_and_keeps_command)
{
	__u8 expected[16], buf[VTPM_BUFSIZE];
	size_t length;

	ASSERT_EQ(0, device_create(self->vtpmx, &self->dev));

	ASSERT_EQ(-1, read(self->dev.emu.fd, buf, 5));
	ASSERT_EQ(EIO, errno);
	ASSERT_EQ(-1, read(self->dev.emu.fd, buf, 10));
	ASSERT_EQ(EIO, errno);

	length = set_locality_command(variant->tpm2, expected);
	ASSERT_EQ(length, read(self->dev.emu.fd, buf, sizeof(buf)));
	ASSERT_EQ(0, memcmp(expected, buf, length));
}

TEST_F(vtpm, read_without_command_nonblocking_fails_eagain)
{
	__u8 buf[VTPM_BUFSIZE];
	ssize_t n;
	int flags;

	ASSERT_EQ(0, device_create(self->vtpmx, &self->dev));
	read_set_locality(_metadata, &self->dev);

	/* Nothing is queued until the server responds to SET_LOCALITY. */
	flags = fcntl(self->dev.emu.fd, F_GETFL);
	ASSERT_EQ(0, fcntl(self->dev.emu.fd, F_SETFL, flags | O_NONBLOCK));
	/* A driver that ignored O_NONBLOCK would block: end that with EINTR. */
	ASSERT_EQ(0, catch_signal(SIGALRM, false));
	ASSERT_EQ(0, alarm_after_ms(2000));
	n = read(self->dev.emu.fd, buf, sizeof(buf));
	alarm_after_ms(0);

	ASSERT_EQ(-1, n);
	ASSERT_EQ(EAGAIN, errno);
}

TEST_F(vtpm, read_without_command_interrupted_fails_eintr)
{
	__u8 buf[VTPM_BUFSIZE];
	ssize_t n;

	ASSERT_EQ(0, device_create(self->vtpmx, &self->dev));
	read_set_locality(_metadata, &self->dev);

	ASSERT_EQ(0, catch_signal(SIGALRM, false));
	ASSERT_EQ(0, alarm_after_ms(100));
	n = read(self->dev.emu.fd, buf, sizeof(buf));

	ASSERT_EQ(-1, n);
	ASSERT_EQ(EINTR, errno);
	ASSERT_EQ(1, atomic_load(&signals_caught));
}

struct restart_helper {
	pthread_t reader;
	struct device *dev;
	int write_result;
};

/*
 * Signal the blocked reader, then respond to SET_LOCALITY, so that the
 * next command arrives.
 */
static void *restart_helper_main(void *arg)
{
	struct restart_helper *helper = arg;
	struct device *dev = helper->dev;
	__u8 command[16], response[VTPM_BUFSIZE];
	size_t length;

	sleep_ms(200);
	pthread_kill(helper->reader, SIGUSR1);
	sleep_ms(200);
	length = set_locality_command(dev->emu.tpm2, command);
	length = vtpm_emulator_respond(&dev->emu, command, length, response);
	helper->write_result = write(dev->emu.fd, response, length);
	return NULL;
}

TEST_F(vtpm, read_without_command_restarts_after_sa_restart_signal)
{
	struct restart_helper helper = { .dev = &self->dev };
	__u8 buf[VTPM_BUFSIZE];
	pthread_t thread;
	ssize_t n;

	ASSERT_EQ(0, device_create(self->vtpmx, &self->dev));
	read_set_locality(_metadata, &self->dev);

	ASSERT_EQ(0, catch_signal(SIGUSR1, true));
	helper.reader = pthread_self();
	ASSERT_EQ(0, pthread_create(&thread, NULL, restart_helper_main,
				    &helper));
	n = read(self->dev.emu.fd, buf, sizeof(buf));
	pthread_join(thread, NULL);

	ASSERT_EQ(1, atomic_load(&signals_caught));
	ASSERT_LT(0, n) {
		TH_LOG("read after a SA_RESTART signal failed: %s",
		       strerror(errno));
	}
	ASSERT_NE(TPM2_CC_SET_LOCALITY, vtpm_command_ordinal(buf, n));
}

/* Make registration fail: an error response to SET_LOCALITY. */
static void fail_registration(struct __test_metadata *_metadata, int vtpmx,
			      struct device *dev)
{
	struct vtpm_fault fault = {
		.kind = VTPM_FAULT_ERROR,
		.ordinal = TPM2_CC_SET_LOCALITY,
		.index = VTPM_ANY_INDEX,
		.error_code = dev->emu.tpm2 ? TPM2_RC_FAILURE : TPM_FAIL,
	};

	ASSERT_EQ(0, vtpm_emulator_add_fault(&dev->emu, &fault));
	ASSERT_EQ(0, device_create(vtpmx, dev));
	ASSERT_EQ(0, device_serve(dev));
	ASSERT_EQ(0, vtpm_emulator_wait_hangup(&dev->emu, HANGUP_TIMEOUT_MS)) {
		dump_records(_metadata, &dev->emu);
	}
	device_stop(dev);
}

TEST_F(vtpm, read_and_write_after_failed_registration_fail_epipe)
{
	__u8 buf[VTPM_BUFSIZE] = { 0 };

	fail_registration(_metadata, self->vtpmx, &self->dev);

	ASSERT_EQ(-1, read(self->dev.emu.fd, buf, sizeof(buf)));
	ASSERT_EQ(EPIPE, errno);
	ASSERT_EQ(-1, write(self->dev.emu.fd, buf, TPM_HEADER_SIZE));
	ASSERT_EQ(EPIPE, errno);
}

TEST_F(vtpm, write_without_awaited_response_fails_eio)
{
	__u8 command[16], response[VTPM_BUFSIZE];
	size_t length;

	ASSERT_EQ(0, device_create(self->vtpmx, &self->dev));
	length = set_locality_command(variant->tpm2, command);
	length = vtpm_emulator_respond(&self->dev.emu, command, length,
				       response);

	/* SET_LOCALITY may be queued, but the server has not read it. */
	ASSERT_EQ(-1, write(self->dev.emu.fd, response, length));
	ASSERT_EQ(EIO, errno);

	read_set_locality(_metadata, &self->dev);
	ASSERT_EQ(length, write(self->dev.emu.fd, response, length));

	/* The response was taken; a second one is unsolicited. */
	ASSERT_EQ(-1, write(self->dev.emu.fd, response, length));
	ASSERT_EQ(EIO, errno);
}

TEST_F(vtpm, write_over_4096_bytes_fails_eio)
{
	static __u8 big[VTPM_BUFSIZE + 1];

	ASSERT_EQ(0, device_create(self->vtpmx, &self->dev));
	read_set_locality(_metadata, &self->dev);

	ASSERT_EQ(-1, write(self->dev.emu.fd, big, sizeof(big)));
	ASSERT_EQ(EIO, errno);

	/* The response is still awaited: registration can go on. */
	respond_to_set_locality(_metadata, &self->dev);
	ASSERT_EQ(0, device_serve(&self->dev));
	ASSERT_TRUE(device_wait_registered(&self->dev, REGISTER_TIMEOUT_MS));
}

TEST_F(vtpm, write_of_4096_bytes_is_accepted)
{
	static __u8 response[VTPM_BUFSIZE];

	ASSERT_EQ(0, device_create(self->vtpmx, &self->dev));
	read_set_locality(_metadata, &self->dev);

	/* A success response padded to the largest size. */
	response[0] = variant->tpm2 ? 0x80 : 0x00;
	response[1] = variant->tpm2 ? 0x01 : 0xc4;
	response[4] = VTPM_BUFSIZE >> 8;
	ASSERT_EQ(VTPM_BUFSIZE, write(self->dev.emu.fd, response,
				      sizeof(response)));

	ASSERT_EQ(0, device_serve(&self->dev));
	ASSERT_TRUE(device_wait_registered(&self->dev, REGISTER_TIMEOUT_MS));
}

/* The duration after which the client command times out, in ms. */
static long client_command_duration_ms(bool tpm2)
{
	return tpm2 ? TPM2_MEDIUM_DURATION_MS : TPM1_SHORT_DURATION_MS;
}

/* Make the TPM 1.2 emulator report short durations; see the #define. */
static void use_short_durations(struct device *dev)
{
	dev->emu.durations_us[0] = TPM1_SHORT_DURATION_MS * 1000;
	dev->emu.durations_us[1] = TPM1_SHORT_DURATION_MS * 1000;
}

TEST_F(vtpm, late_response_after_timeout_is_dropped)
{
	long duration_ms = client_command_duration_ms(variant->tpm2);
	__u32 ordinal = client_ordinal(variant->tpm2);
	__u8 command[64], response[VTPM_BUFSIZE];
	struct vtpm_fault fault = {
		.kind = VTPM_FAULT_DELAY,
		.ordinal = ordinal,
		.index = 0,
		.delay_ms = duration_ms + 1000,
	};
	struct vtpm_record record;
	size_t length, before;
	char path[32];
	ssize_t n;

	use_short_durations(&self->dev);
	create_registered(_metadata, self->vtpmx, &self->dev);
	node_path(path, sizeof(path), "tpm", self->dev.info.tpm_num);
	before = vtpm_emulator_count(&self->dev.emu, ordinal);
	ASSERT_EQ(0, vtpm_emulator_add_fault(&self->dev.emu, &fault));

	length = client_command(variant->tpm2, command);
	n = transmit(path, command, length, response, sizeof(response));
	ASSERT_EQ(-ETIME, n);

	/* The late response is accepted... */
	ASSERT_EQ(0, vtpm_emulator_wait_reply(&self->dev.emu, ordinal,
					      before + 1, 1,
					      COMMAND_TIMEOUT_MS));
	ASSERT_TRUE(last_record(&self->dev.emu, ordinal, &record));
	ASSERT_EQ(record.response_length, record.write_result);

	/* ...and dropped: the next command gets its own response. */
	check_round_trip(_metadata, &self->dev, "tpm");
}

/* Poll the server fd for every read and write bit, without waiting. */
static short poll_now(int fd)
{
	struct pollfd pfd = {
		.fd = fd,
		.events = POLLIN | POLLRDNORM | POLLOUT | POLLWRNORM,
	};

	if (poll(&pfd, 1, 0) < 0)
		return -1;
	return pfd.revents;
}

/* Wait until some of @bits are set on the server fd; returns all bits. */
static short poll_until(int fd, short bits, int timeout_ms)
{
	struct timespec start;
	short revents;

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		revents = poll_now(fd);
		if (revents < 0 || (revents & bits) ||
		    elapsed_ms(&start) >= timeout_ms)
			return revents;
		sleep_ms(WAIT_STEP_MS);
	}
}

TEST_F(vtpm, poll_with_queued_command_reports_readable_only)
{
	ASSERT_EQ(0, device_create(self->vtpmx, &self->dev));

	ASSERT_EQ(POLLIN | POLLRDNORM,
		  poll_until(self->dev.emu.fd, POLLIN, COMMAND_TIMEOUT_MS));
}

TEST_F(vtpm, poll_with_awaited_response_reports_writable_only)
{
	ASSERT_EQ(0, device_create(self->vtpmx, &self->dev));
	read_set_locality(_metadata, &self->dev);

	ASSERT_EQ(POLLOUT | POLLWRNORM, poll_now(self->dev.emu.fd));

	respond_to_set_locality(_metadata, &self->dev);
	ASSERT_EQ(POLLIN | POLLRDNORM,
		  poll_until(self->dev.emu.fd, POLLIN, COMMAND_TIMEOUT_MS));
}

TEST_F(vtpm, poll_on_idle_device_reports_nothing)
{
	__u8 command[VTPM_BUFSIZE], response[VTPM_BUFSIZE];
	short revents;
	ssize_t n;
	int tries;

	create_registered(_metadata, self->vtpmx, &self->dev);
	device_stop(&self->dev);

	/* The hwrng may queue GetRandom at any time: serve those first. */
	for (tries = 0; tries < 10; tries++) {
		revents = poll_now(self->dev.emu.fd);
		if (!(revents & POLLIN))
			break;
		n = read(self->dev.emu.fd, command, sizeof(command));
		ASSERT_LT(0, n);
		ASSERT_EQ(variant->tpm2 ? TPM2_CC_GET_RANDOM :
					  TPM_ORD_GET_RANDOM,
			  vtpm_command_ordinal(command, n));
		n = vtpm_emulator_respond(&self->dev.emu, command, n,
					  response);
		ASSERT_EQ(n, write(self->dev.emu.fd, response, n));
	}
	ASSERT_EQ(0, revents);
}

TEST_F(vtpm, poll_on_dead_device_reports_hangup_only)
{
	fail_registration(_metadata, self->vtpmx, &self->dev);

	ASSERT_EQ(POLLHUP, poll_now(self->dev.emu.fd));
}

TEST_F(vtpm, lseek_on_server_fd_fails_espipe)
{
	ASSERT_EQ(0, device_create(self->vtpmx, &self->dev));

	ASSERT_EQ(-1, lseek(self->dev.emu.fd, 0, SEEK_SET));
	ASSERT_EQ(ESPIPE, errno);
	ASSERT_EQ(-1, lseek(self->dev.emu.fd, 0, SEEK_CUR));
	ASSERT_EQ(ESPIPE, errno);
}

TEST_F(vtpm, startup_sends_set_locality_first)
{
	__u8 expected[16];
	struct vtpm_record first;
	size_t length;

	create_registered(_metadata, self->vtpmx, &self->dev);

	length = set_locality_command(variant->tpm2, expected);
	ASSERT_TRUE(vtpm_emulator_get_record(&self->dev.emu, 0, &first));
	ASSERT_EQ(length, first.length);
	ASSERT_EQ(0, memcmp(expected, first.command, length));
	ASSERT_EQ(1, vtpm_emulator_count(&self->dev.emu,
					 TPM2_CC_SET_LOCALITY));
}

/*
 * What the TPM core sends to register a chip, leaving out GetRandom: the
 * ordinal, the length and one parameter, @size bytes at @offset (none
 * when @size is 0).
 */
struct startup_step {
	__u32 ordinal;
	size_t length;
	size_t offset;
	size_t size;
	__u32 value;
};

static const struct startup_step tpm2_startup_steps[] = {
	{ TPM2_CC_SET_LOCALITY, 11, 10, 1, 0 /* locality */ },
	{ TPM2_CC_SELF_TEST, 11, 10, 1, 0 /* not a full test */ },
	{ TPM2_CC_STARTUP, 12, 10, 2, TPM2_SU_CLEAR },
	{ TPM2_CC_SELF_TEST, 11, 10, 1, 0 },
	{ TPM2_CC_GET_CAPABILITY, 22, 10, 4, TPM2_CAP_TPM_PROPERTIES },
	{ TPM2_CC_GET_CAPABILITY, 22, 10, 4, TPM2_CAP_COMMANDS },
	{ TPM2_CC_GET_CAPABILITY, 22, 10, 4, TPM2_CAP_PCRS },
};

static const struct startup_step tpm1_startup_steps[] = {
	{ TPM_ORD_SET_LOCALITY, 11, 10, 1, 0 /* locality */ },
	{ TPM_ORD_GET_CAPABILITY, 22, 18, 4, TPM_CAP_PROP_TIS_TIMEOUT },
	{ TPM_ORD_STARTUP, 12, 10, 2, 1 /* TPM_ST_CLEAR */ },
	{ TPM_ORD_GET_CAPABILITY, 22, 18, 4, TPM_CAP_PROP_TIS_TIMEOUT },
	{ TPM_ORD_GET_CAPABILITY, 22, 18, 4, TPM_CAP_PROP_TIS_DURATION },
	{ TPM_ORD_CONTINUE_SELF_TEST, 10, 0, 0, 0 },
	{ TPM_ORD_PCR_READ, 14, 10, 4, 0 /* PCR 0 */ },
};

static __u32 step_parameter(const struct startup_step *step,
			    const struct vtpm_record *record)
{
	__u32 value = 0;
	size_t i;

	if (step->offset + step->size > record->length)
		return ~0u;
	for (i = 0; i < step->size; i++)
		value = value << 8 | record->command[step->offset + i];
	return value;
}

TEST_F(vtpm, startup_runs_core_start_up_commands)
{
	const struct startup_step *steps = variant->tpm2 ? tpm2_startup_steps :
							   tpm1_startup_steps;
	__u32 random = variant->tpm2 ? TPM2_CC_GET_RANDOM : TPM_ORD_GET_RANDOM;
	size_t nr_steps = ARRAY_SIZE(tpm2_startup_steps), step = 0, i;
	struct vtpm_record record;

	create_registered(_metadata, self->vtpmx, &self->dev);

	for (i = 0; vtpm_emulator_get_record(&self->dev.emu, i, &record);
	     i++) {
		if (step == nr_steps)
			break;
		if (record.ordinal == random)
			continue;
		EXPECT_EQ(steps[step].ordinal, record.ordinal) {
			TH_LOG("start-up command %zu", step);
		}
		EXPECT_EQ(steps[step].length, record.length) {
			TH_LOG("start-up command %zu", step);
		}
		EXPECT_EQ(steps[step].value,
			  step_parameter(&steps[step], &record)) {
			TH_LOG("start-up command %zu", step);
		}
		step++;
	}
	ASSERT_EQ(nr_steps, step) {
		dump_records(_metadata, &self->dev.emu);
	}
}

TEST_F(vtpm, client_set_locality_is_rejected)
{
	__u8 command[16], response[VTPM_BUFSIZE];
	size_t length;
	char path[32];
	ssize_t n;

	create_registered(_metadata, self->vtpmx, &self->dev);
	length = set_locality_command(variant->tpm2, command);

	node_path(path, sizeof(path), "tpm", self->dev.info.tpm_num);
	n = transmit(path, command, length, response, sizeof(response));
	ASSERT_EQ(-EFAULT, n);

	if (variant->tpm2) {
		/*
		 * The resource manager does not know the command, so it
		 * sends its own error response.
		 */
		node_path(path, sizeof(path), "tpmrm", self->dev.info.tpm_num);
		n = transmit(path, command, length, response,
			     sizeof(response));
		ASSERT_EQ(TPM_HEADER_SIZE, n);
		ASSERT_EQ(TPM2_RC_COMMAND_CODE | TSS2_RESMGR_TPM_RC_LAYER,
			  response_code(response));
	}

	ASSERT_EQ(1, vtpm_emulator_count(&self->dev.emu,
					 TPM2_CC_SET_LOCALITY));
	check_round_trip(_metadata, &self->dev, "tpm");
}

/* After a failed registration: no chip, and the server fd is dead. */
static void check_not_registered(struct __test_metadata *_metadata,
				 struct device *dev)
{
	char path[64];

	node_path(path, sizeof(path), "tpm", dev->info.tpm_num);
	ASSERT_FALSE(path_exists(path));
	node_path(path, sizeof(path), "tpmrm", dev->info.tpm_num);
	ASSERT_FALSE(path_exists(path));
	sysfs_path(path, sizeof(path), dev->info.tpm_num, "");
	ASSERT_FALSE(path_exists(path));
	ASSERT_NE(0, poll_now(dev->emu.fd) & POLLHUP);
}

TEST_F(vtpm, set_locality_error_aborts_registration)
{
	fail_registration(_metadata, self->vtpmx, &self->dev);

	check_not_registered(_metadata, &self->dev);
	ASSERT_EQ(1, vtpm_emulator_count(&self->dev.emu, VTPM_ANY_ORDINAL));
}

TEST_F(vtpm, bad_start_up_reply_aborts_registration)
{
	/*
	 * The first start-up command whose failure is fatal: the TPM core
	 * retries a failed TPM2_SelfTest, but not TPM2_Startup.
	 */
	__u32 first_startup = variant->tpm2 ? TPM2_CC_STARTUP :
					      TPM_ORD_GET_CAPABILITY;
	const struct {
		__u32 ordinal;
		enum vtpm_fault_kind kind;
	} cases[] = {
		{ TPM2_CC_SET_LOCALITY, VTPM_FAULT_GARBAGE },
		{ TPM2_CC_SET_LOCALITY, VTPM_FAULT_TRUNCATE },
		{ TPM2_CC_SET_LOCALITY, VTPM_FAULT_BAD_LENGTH },
		{ TPM2_CC_SET_LOCALITY, VTPM_FAULT_SPLIT },
		{ first_startup, VTPM_FAULT_GARBAGE },
		{ first_startup, VTPM_FAULT_TRUNCATE },
		{ first_startup, VTPM_FAULT_BAD_LENGTH },
	};
	unsigned int i;

	for (i = 0; i < ARRAY_SIZE(cases); i++) {
		struct vtpm_fault fault = {
			.kind = cases[i].kind,
			.ordinal = cases[i].ordinal,
			.index = 0,
		};

		TH_LOG("%s reply to ordinal 0x%x",
		       vtpm_fault_name(cases[i].kind), cases[i].ordinal);
		device_reset(&self->dev, variant->tpm2);
		ASSERT_EQ(0, vtpm_emulator_add_fault(&self->dev.emu, &fault));
		ASSERT_EQ(0, device_create(self->vtpmx, &self->dev));
		ASSERT_EQ(0, device_serve(&self->dev));
		ASSERT_EQ(0, vtpm_emulator_wait_hangup(&self->dev.emu,
						       HANGUP_TIMEOUT_MS)) {
			dump_records(_metadata, &self->dev.emu);
		}
		device_stop(&self->dev);
		check_not_registered(_metadata, &self->dev);
	}
}

TEST_F(vtpm, sysfs_shows_version_attributes)
{
	char path[128], text[4096];
	unsigned int num;

	use_short_durations(&self->dev);
	create_registered(_metadata, self->vtpmx, &self->dev);
	num = self->dev.info.tpm_num;

	sysfs_path(path, sizeof(path), num, "tpm_version_major");
	ASSERT_LT(0, read_file(path, text, sizeof(text)));
	ASSERT_STREQ(variant->tpm2 ? "2\n" : "1\n", text);

	if (variant->tpm2) {
		sysfs_path(path, sizeof(path), num, "pcr-sha256/0");
		ASSERT_EQ(65, read_file(path, text, sizeof(text)));
		ASSERT_EQ(64, strspn(text, "0"));

		sysfs_path(path, sizeof(path), num, "durations");
		ASSERT_FALSE(path_exists(path));
		sysfs_path(path, sizeof(path), num, "timeouts");
		ASSERT_FALSE(path_exists(path));
	} else {
		unsigned long short_us, medium_us, long_us;
		int fields;

		sysfs_path(path, sizeof(path), num, "durations");
		ASSERT_LT(0, read_file(path, text, sizeof(text)));
		fields = sscanf(text, "%lu %lu %lu", &short_us, &medium_us,
				&long_us);
		ASSERT_EQ(3, fields);
		ASSERT_EQ(self->dev.emu.durations_us[0], short_us);
		ASSERT_EQ(self->dev.emu.durations_us[1], medium_us);
		ASSERT_EQ(self->dev.emu.durations_us[2], long_us);

		sysfs_path(path, sizeof(path), num, "timeouts");
		ASSERT_LT(0, read_file(path, text, sizeof(text)));

		sysfs_path(path, sizeof(path), num, "caps");
		ASSERT_LT(0, read_file(path, text, sizeof(text)));
		ASSERT_TRUE(contains(text, "TCG version: 1.2"));

		sysfs_path(path, sizeof(path), num, "pcrs");
		ASSERT_LT(0, read_file(path, text, sizeof(text)));
		ASSERT_TRUE(contains(text, "PCR-23: 00 00"));
	}
}

TEST_F(vtpm, chip_is_virtual_without_ppi)
{
	char path[64], target[PATH_MAX];

	create_registered(_metadata, self->vtpmx, &self->dev);

	/* No parent device: the chip sits under /sys/devices/virtual. */
	sysfs_path(path, sizeof(path), self->dev.info.tpm_num, "");
	ASSERT_TRUE(!!realpath(path, target));
	ASSERT_TRUE(contains(target, "/devices/virtual/")) {
		TH_LOG("%s is %s", path, target);
	}
	sysfs_path(path, sizeof(path), self->dev.info.tpm_num, "device");
	ASSERT_FALSE(path_exists(path));
	sysfs_path(path, sizeof(path), self->dev.info.tpm_num, "ppi");
	ASSERT_FALSE(path_exists(path));
}

TEST_F(vtpm, hwrng_is_registered_for_chip)
{
	const char *available = "/sys/class/misc/hw_random/rng_available";
	char text[4096], name[32];

	if (!path_exists(available))
		SKIP(return, "%s not found: no hwrng core", available);
	create_registered(_metadata, self->vtpmx, &self->dev);

	snprintf(name, sizeof(name), "tpm-rng-%u", self->dev.info.tpm_num);
	ASSERT_LT(0, read_file(available, text, sizeof(text)));
	ASSERT_TRUE(contains(text, name)) {
		TH_LOG("%s reads: %s", available, text);
	}
}

TEST_F(vtpm, unanswered_command_fails_etime)
{
	long duration_ms = client_command_duration_ms(variant->tpm2);
	__u32 ordinal = client_ordinal(variant->tpm2);
	__u8 command[64], response[VTPM_BUFSIZE];
	struct vtpm_fault fault = {
		.kind = VTPM_FAULT_STALL,
		.ordinal = ordinal,
		.index = 0,
	};
	struct timespec start;
	size_t length, before;
	char path[32];
	ssize_t n;

	use_short_durations(&self->dev);
	create_registered(_metadata, self->vtpmx, &self->dev);
	node_path(path, sizeof(path), "tpm", self->dev.info.tpm_num);
	before = vtpm_emulator_count(&self->dev.emu, ordinal);
	ASSERT_EQ(0, vtpm_emulator_add_fault(&self->dev.emu, &fault));

	length = client_command(variant->tpm2, command);
	clock_gettime(CLOCK_MONOTONIC, &start);
	n = transmit(path, command, length, response, sizeof(response));
	ASSERT_EQ(-ETIME, n);
	/*
	 * Only after the command's duration: at least half of it, because
	 * jiffies and CLOCK_MONOTONIC drift apart in a busy TCG guest.
	 */
	ASSERT_LE(duration_ms / 2, elapsed_ms(&start));
	ASSERT_EQ(before + 1, vtpm_emulator_count(&self->dev.emu, ordinal));

	check_round_trip(_metadata, &self->dev, "tpm");
}

TEST_F(vtpm, client_command_round_trips)
{
	create_registered(_metadata, self->vtpmx, &self->dev);

	check_round_trip(_metadata, &self->dev, "tpm");
	if (variant->tpm2)
		check_round_trip(_metadata, &self->dev, "tpmrm");
}

TEST_F(vtpm, client_command_survives_signal)
{
	__u32 ordinal = client_ordinal(variant->tpm2);
	struct vtpm_fault fault = {
		.kind = VTPM_FAULT_DELAY,
		.ordinal = ordinal,
		.index = 0,
		.delay_ms = 300,
	};
	struct vtpm_record record;
	struct client client;
	__u8 command[64];
	char path[32];
	size_t length;

	create_registered(_metadata, self->vtpmx, &self->dev);
	node_path(path, sizeof(path), "tpm", self->dev.info.tpm_num);
	ASSERT_EQ(0, vtpm_emulator_add_fault(&self->dev.emu, &fault));
	ASSERT_EQ(0, catch_signal(SIGUSR1, false));

	length = client_command(variant->tpm2, command);
	ASSERT_EQ(0, client_start(&client, path, command, length));
	ASSERT_EQ(0, vtpm_emulator_wait_command(&self->dev.emu, ordinal,
						1, COMMAND_TIMEOUT_MS));
	pthread_kill(client.thread, SIGUSR1);
	pthread_join(client.thread, NULL);

	/* The emulator was executing it: the command completes anyway. */
	ASSERT_EQ(1, atomic_load(&signals_caught));
	ASSERT_TRUE(last_record(&self->dev.emu, ordinal, &record));
	ASSERT_EQ(record.response_length, client.result) {
		TH_LOG("client got %zd (%s)", client.result,
		       client.result < 0 ? strerror(-client.result) : "bytes");
	}
	ASSERT_EQ(0, memcmp(record.response, client.response,
			    record.response_length));
}

/*
 * Register the device, make the emulator hang on the next unlisted
 * command and start a client that sends one; return once the emulator has
 * it. The client then waits 2 minutes unless the device goes away.
 */
static void start_blocked_client(struct __test_metadata *_metadata,
				 int vtpmx, struct device *dev,
				 struct client *client,
				 enum vtpm_fault_kind kind)
{
	__u32 ordinal = dev->emu.tpm2 ? TPM2_CC_UNLISTED : TPM_ORD_UNLISTED;
	struct vtpm_fault fault = {
		.kind = kind,
		.ordinal = ordinal,
		.index = 0,
	};
	__u8 command[16];
	char path[32];
	size_t length;

	create_registered(_metadata, vtpmx, dev);
	ASSERT_EQ(0, vtpm_emulator_add_fault(&dev->emu, &fault));

	node_path(path, sizeof(path), "tpm", dev->info.tpm_num);
	length = unlisted_command(dev->emu.tpm2, command);
	ASSERT_EQ(0, client_start(client, path, command, length));
	ASSERT_EQ(0, vtpm_emulator_wait_command(&dev->emu, ordinal, 1,
						COMMAND_TIMEOUT_MS));
}

TEST_F(vtpm, server_close_fails_blocked_client_promptly)
{
	struct timespec closed;
	struct client client;
	long ms;

	start_blocked_client(_metadata, self->vtpmx, &self->dev, &client,
			     VTPM_FAULT_HANG);
	ASSERT_FALSE(atomic_load(&client.finished));

	clock_gettime(CLOCK_MONOTONIC, &closed);
	device_close(&self->dev);
	pthread_join(client.thread, NULL);

	ms = (client.done.tv_sec - closed.tv_sec) * 1000 +
	     (client.done.tv_nsec - closed.tv_nsec) / 1000000;
	ASSERT_GT(0, client.result);
	ASSERT_TRUE(is_dead_errno(-client.result)) {
		TH_LOG("client failed with %s", strerror(-client.result));
	}
	ASSERT_GT(CLOSE_BOUND_MS, ms);
}

TEST_F(vtpm, server_exit_mid_command_fails_client)
{
	struct client client;

	start_blocked_client(_metadata, self->vtpmx, &self->dev, &client,
			     VTPM_FAULT_EXIT);
	pthread_join(client.thread, NULL);

	ASSERT_GT(0, client.result);
	ASSERT_TRUE(is_dead_errno(-client.result)) {
		TH_LOG("client failed with %s", strerror(-client.result));
	}
	ASSERT_TRUE(wait_unregistered(self->dev.info.tpm_num,
				      HANGUP_TIMEOUT_MS));
}

TEST_F(vtpm, server_close_fails_later_client_commands_epipe)
{
	__u8 command[64];
	int tpm, tpmrm = -1;
	char path[32];
	size_t length;

	create_registered(_metadata, self->vtpmx, &self->dev);
	node_path(path, sizeof(path), "tpm", self->dev.info.tpm_num);
	tpm = open(path, O_RDWR);
	ASSERT_LE(0, tpm);
	if (variant->tpm2) {
		node_path(path, sizeof(path), "tpmrm", self->dev.info.tpm_num);
		tpmrm = open(path, O_RDWR);
		ASSERT_LE(0, tpmrm);
	}

	device_close(&self->dev);

	length = client_command(variant->tpm2, command);
	EXPECT_EQ(-1, write(tpm, command, length));
	EXPECT_EQ(EPIPE, errno);
	if (tpmrm >= 0) {
		EXPECT_EQ(-1, write(tpmrm, command, length));
		EXPECT_EQ(EPIPE, errno);
		EXPECT_EQ(0, close(tpmrm));
	}
	ASSERT_EQ(0, close(tpm));
	ASSERT_TRUE(wait_unregistered(self->dev.info.tpm_num,
				      HANGUP_TIMEOUT_MS));
}

TEST_F(vtpm, server_close_removes_nodes)
{
	const char *available = "/sys/class/misc/hw_random/rng_available";
	char text[4096], name[32];
	unsigned int num;

	create_registered(_metadata, self->vtpmx, &self->dev);
	num = self->dev.info.tpm_num;

	device_close(&self->dev);

	ASSERT_TRUE(wait_unregistered(num, HANGUP_TIMEOUT_MS));
	if (read_file(available, text, sizeof(text)) >= 0) {
		snprintf(name, sizeof(name), "tpm-rng-%u ", num);
		strcat(text, " ");
		ASSERT_FALSE(contains(text, name));
	}
}

/*
 * A client that sends commands through one open node until a command
 * fails, checking every response on the way. It runs under SCHED_IDLE.
 */
struct command_loop {
	pthread_t thread;
	int fd;
	bool tpm2;
	unsigned int completed;
	int error;
	ssize_t bad_length;
	__u32 bad_code;
};

static void *command_loop_main(void *arg)
{
	struct command_loop *loop = arg;
	__u8 command[64], response[VTPM_BUFSIZE];
	size_t length = client_command(loop->tpm2, command);
	struct sched_param param = { 0 };
	ssize_t n;

	loop->error = pthread_setschedparam(pthread_self(), SCHED_IDLE, &param);
	if (loop->error)
		return NULL;
	for (;;) {
		n = write(loop->fd, command, length);
		if (n >= 0)
			n = read(loop->fd, response, sizeof(response));
		if (n < 0) {
			loop->error = errno;
			return NULL;
		}
		if (n < 10 || response_code(response)) {
			loop->bad_length = n;
			loop->bad_code = n < 10 ? 0 : response_code(response);
			return NULL;
		}
		loop->completed++;
	}
}

static atomic_bool hogs_stop;

static void *cpu_hog_main(void *arg)
{
	while (!atomic_load(&hogs_stop))
		;
	return NULL;
}

/*
 * The server closes its fd right after writing a response, while the
 * client's command is still finishing in the TPM core: on /dev/tpmrmN,
 * the resource manager reads the command attribute table after the
 * response. A busy thread on every CPU keeps the SCHED_IDLE client from
 * running until the teardown has gone far. Every command gets its whole
 * success response or EPIPE, and the device goes away.
 */
TEST_F_TIMEOUT(vtpm, close_right_after_response_fails_commands_cleanly, 600)
{
	const char *kind = variant->tpm2 ? "tpmrm" : "tpm";
	long nr_hogs = sysconf(_SC_NPROCESSORS_ONLN);
	pthread_t hogs[MAX_CPU_HOGS];
	struct command_loop loop;
	unsigned int round, i;
	char path[32];

	if (nr_hogs < 1 || nr_hogs > MAX_CPU_HOGS)
		nr_hogs = MAX_CPU_HOGS;
	for (round = 0; round < NR_CLOSE_RACES; round++) {
		device_reset(&self->dev, variant->tpm2);
		create_registered(_metadata, self->vtpmx, &self->dev);
		node_path(path, sizeof(path), kind, self->dev.info.tpm_num);

		memset(&loop, 0, sizeof(loop));
		loop.tpm2 = variant->tpm2;
		loop.fd = open(path, O_RDWR);
		ASSERT_LE(0, loop.fd);

		/* Serve from this thread, so that the close follows a write. */
		device_stop(&self->dev);
		atomic_store(&hogs_stop, false);
		for (i = 0; i < nr_hogs; i++)
			ASSERT_EQ(0, pthread_create(&hogs[i], NULL,
						    cpu_hog_main, NULL));
		ASSERT_EQ(0, pthread_create(&loop.thread, NULL,
					    command_loop_main, &loop));
		for (i = 0; i <= round % MAX_RESPONSES_BEFORE_CLOSE; i++)
			ASSERT_EQ(0, vtpm_emulator_serve_one(&self->dev.emu));
		vtpm_emulator_close(&self->dev.emu);

		ASSERT_EQ(0, pthread_join(loop.thread, NULL));
		atomic_store(&hogs_stop, true);
		for (i = 0; i < nr_hogs; i++)
			ASSERT_EQ(0, pthread_join(hogs[i], NULL));
		EXPECT_EQ(0, close(loop.fd));
		ASSERT_EQ(0, loop.bad_length) {
			TH_LOG("round %u: %s returned %zd bytes with response code 0x%x",
			       round, path, loop.bad_length, loop.bad_code);
		}
		ASSERT_TRUE(is_dead_errno(loop.error)) {
			TH_LOG("round %u: a command through %s failed with %s after %u commands",
			       round, path, strerror(loop.error),
			       loop.completed);
		}
		ASSERT_TRUE(wait_unregistered(self->dev.info.tpm_num,
					      HANGUP_TIMEOUT_MS));
	}
}

TEST_F(vtpm, device_number_is_reused_after_close)
{
	unsigned int num;

	create_registered(_metadata, self->vtpmx, &self->dev);
	num = self->dev.info.tpm_num;
	device_close(&self->dev);
	ASSERT_TRUE(wait_unregistered(num, HANGUP_TIMEOUT_MS));

	device_reset(&self->dev, variant->tpm2);
	create_registered(_metadata, self->vtpmx, &self->dev);
	ASSERT_EQ(num, self->dev.info.tpm_num);
}

TEST_F_TIMEOUT(vtpm, create_close_cycles_release_numbers, 600)
{
	int fds_before = count_open_fds();
	unsigned int num, i;

	num = probe_free_number(_metadata, self->vtpmx, variant->tpm2);

	/* Unserved: each registration is cancelled by the close. */
	for (i = 0; i < NR_CYCLES; i++) {
		struct device dev;

		device_init(&dev, variant->tpm2);
		ASSERT_EQ(0, device_create(self->vtpmx, &dev)) {
			TH_LOG("cycle %u", i);
		}
		ASSERT_EQ(num, dev.info.tpm_num) {
			TH_LOG("cycle %u", i);
		}
		device_fini(&dev);
	}

	ASSERT_EQ(fds_before, count_open_fds());
	create_registered(_metadata, self->vtpmx, &self->dev);
	ASSERT_EQ(num, self->dev.info.tpm_num);
}

/* Create devices [@first, @first + @n) and serve them in one new server. */
static void create_batch(struct __test_metadata *_metadata, int vtpmx,
			 struct device *devs, size_t first, size_t n,
			 struct vtpm_server *server)
{
	struct vtpm_emulator *emus[MANY_DEVICES_BATCH];
	size_t i;

	for (i = 0; i < n; i++) {
		/* Started already, to keep the kernel log short. */
		devs[first + i].emu.started = true;
		ASSERT_EQ(0, device_create(vtpmx, &devs[first + i])) {
			TH_LOG("device %zu", first + i);
		}
		emus[i] = &devs[first + i].emu;
	}
	ASSERT_EQ(0, vtpm_server_start(server, emus, n));
}

TEST_F_TIMEOUT(vtpm, thousand_devices_live_at_once, 900)
{
	unsigned int first, current;
	struct timespec start;
	struct device *devs;
	size_t i, batch;

	/* A server fd per device, and an epoll fd and a pipe per batch. */
	ASSERT_EQ(0, raise_fd_limit(2 * NR_MANY_DEVICES));
	first = probe_free_number(_metadata, self->vtpmx, variant->tpm2);
	devs = add_others(_metadata, &self->others, &self->nr_others,
			  variant->tpm2, NR_MANY_DEVICES);
	self->servers = calloc(NR_MANY_DEVICES / MANY_DEVICES_BATCH,
			       sizeof(*self->servers));
	ASSERT_TRUE(!!self->servers);

	clock_gettime(CLOCK_MONOTONIC, &start);
	for (batch = 0; batch < NR_MANY_DEVICES; batch += MANY_DEVICES_BATCH) {
		create_batch(_metadata, self->vtpmx, devs, batch,
			     MANY_DEVICES_BATCH,
			     &self->servers[self->nr_servers++]);
		for (i = batch; i < batch + MANY_DEVICES_BATCH; i++) {
			ASSERT_TRUE(device_wait_registered(&devs[i],
							   REGISTER_TIMEOUT_MS)) {
				TH_LOG("device %zu (tpm%u) did not register",
				       i, devs[i].info.tpm_num);
				dump_records(_metadata, &devs[i].emu);
			}
		}
	}
	TH_LOG("%d devices registered in %ld ms", NR_MANY_DEVICES,
	       elapsed_ms(&start));

	/* All of them are alive at once. */
	for (i = 0; i < NR_MANY_DEVICES; i++) {
		ASSERT_FALSE(vtpm_emulator_is_dead(&devs[i].emu)) {
			TH_LOG("device %zu (tpm%u) died", i,
			       devs[i].info.tpm_num);
		}
	}

	/*
	 * The device whose hwrng is in use goes last. When that hwrng goes
	 * away, the hwrng core of 6.1 reads from the next one at once, in the
	 * closing thread. With no emulator serving, each such close would wait
	 * for a GetRandom to time out.
	 */
	for (i = 0; i < self->nr_servers; i++)
		vtpm_server_stop(&self->servers[i]);
	current = current_hwrng_chip();
	for (i = 0; i < NR_MANY_DEVICES; i++)
		if (devs[i].info.tpm_num != current)
			vtpm_emulator_close(&devs[i].emu);
	for (i = 0; i < NR_MANY_DEVICES; i++)
		vtpm_emulator_close(&devs[i].emu);
	for (i = 0; i < NR_MANY_DEVICES; i++)
		ASSERT_TRUE(wait_unregistered(devs[i].info.tpm_num,
					      HANGUP_TIMEOUT_MS));

	ASSERT_EQ(first, probe_free_number(_metadata, self->vtpmx,
					   variant->tpm2));
}

TEST_F(vtpm, stuck_emulator_delays_no_other_registration)
{
	bool registered, stuck_registered;
	struct device *other;
	struct timespec start;
	char path[64];
	cpu_set_t cpus;
	long ms;

	/*
	 * Create both devices from one CPU, so that a queue that runs one
	 * work item per CPU at a time would hold the second registration
	 * behind the first.
	 */
	CPU_ZERO(&cpus);
	CPU_SET(0, &cpus);
	ASSERT_EQ(0, sched_setaffinity(0, sizeof(cpus), &cpus));

	/* The first emulator never reads its SET_LOCALITY. */
	ASSERT_EQ(0, device_create(self->vtpmx, &self->dev));
	other = add_others(_metadata, &self->others, &self->nr_others,
			   variant->tpm2, 1);

	clock_gettime(CLOCK_MONOTONIC, &start);
	ASSERT_EQ(0, device_create(self->vtpmx, other));
	ASSERT_EQ(0, device_serve(other));
	registered = device_wait_registered(other, INDEPENDENCE_BOUND_MS);
	ms = elapsed_ms(&start);
	sysfs_path(path, sizeof(path), self->dev.info.tpm_num, "");
	stuck_registered = path_exists(path);

	/*
	 * Close the stuck device before any check can end the test: with a
	 * shared queue, the other device's teardown would otherwise wait for
	 * the stuck registration to time out.
	 */
	device_close(&self->dev);

	ASSERT_TRUE(registered) {
		TH_LOG("tpm%u did not register within %d ms while tpm%u was stuck",
		       other->info.tpm_num, INDEPENDENCE_BOUND_MS,
		       self->dev.info.tpm_num);
	}
	TH_LOG("registered in %ld ms", ms);
	ASSERT_FALSE(stuck_registered);
}

TEST_F(vtpm, stuck_emulator_delays_no_other_command)
{
	struct device *other;
	struct client client;

	start_blocked_client(_metadata, self->vtpmx, &self->dev, &client,
			     VTPM_FAULT_HANG);
	other = add_others(_metadata, &self->others, &self->nr_others,
			   variant->tpm2, 1);
	create_registered(_metadata, self->vtpmx, other);

	check_round_trip(_metadata, other, "tpm");
	ASSERT_FALSE(atomic_load(&client.finished));

	device_close(&self->dev);
	pthread_join(client.thread, NULL);
}

TEST_F(vtpm, bad_reply_fails_only_that_command)
{
	const enum vtpm_fault_kind kinds[] = {
		VTPM_FAULT_BAD_LENGTH, VTPM_FAULT_GARBAGE,
		VTPM_FAULT_TRUNCATE, VTPM_FAULT_SPLIT,
	};
	__u32 ordinal = client_ordinal(variant->tpm2);
	__u8 command[64], response[VTPM_BUFSIZE];
	struct vtpm_record record;
	struct device *bystander;
	size_t length;
	char path[32];
	unsigned int i;
	ssize_t n;

	bystander = add_others(_metadata, &self->others, &self->nr_others,
			       variant->tpm2, 1);
	create_registered(_metadata, self->vtpmx, bystander);
	create_registered(_metadata, self->vtpmx, &self->dev);
	node_path(path, sizeof(path), "tpm", self->dev.info.tpm_num);
	length = client_command(variant->tpm2, command);

	for (i = 0; i < ARRAY_SIZE(kinds); i++) {
		struct vtpm_fault fault = {
			.kind = kinds[i],
			.ordinal = ordinal,
			.index = 0,
		};
		size_t before = vtpm_emulator_count(&self->dev.emu, ordinal);

		TH_LOG("%s reply", vtpm_fault_name(kinds[i]));
		ASSERT_EQ(0, vtpm_emulator_add_fault(&self->dev.emu, &fault));
		n = transmit(path, command, length, response,
			     sizeof(response));
		ASSERT_EQ(-EFAULT, n);

		if (kinds[i] == VTPM_FAULT_SPLIT) {
			/* The second part is unsolicited. */
			ASSERT_EQ(0, vtpm_emulator_wait_reply(&self->dev.emu,
							      ordinal,
							      before + 1, 2,
							      COMMAND_TIMEOUT_MS));
			ASSERT_TRUE(last_record(&self->dev.emu, ordinal,
						&record));
			ASSERT_EQ(-EIO, record.write_result);
		}
		check_round_trip(_metadata, &self->dev, "tpm");
	}
	check_round_trip(_metadata, bystander, "tpm");
}

TEST_F(vtpm, error_reply_reaches_client)
{
	__u32 code = variant->tpm2 ? TPM2_RC_FAILURE : TPM_FAIL;
	struct vtpm_fault fault = {
		.kind = VTPM_FAULT_ERROR,
		.ordinal = client_ordinal(variant->tpm2),
		.index = 0,
		.error_code = code,
	};
	__u8 command[64], response[VTPM_BUFSIZE];
	size_t length;
	char path[32];

	create_registered(_metadata, self->vtpmx, &self->dev);
	ASSERT_EQ(0, vtpm_emulator_add_fault(&self->dev.emu, &fault));

	node_path(path, sizeof(path), "tpm", self->dev.info.tpm_num);
	length = client_command(variant->tpm2, command);
	ASSERT_EQ(TPM_HEADER_SIZE, transmit(path, command, length, response,
					    sizeof(response)));
	ASSERT_EQ(code, response_code(response));
}

TEST_F_TIMEOUT(vtpm, server_exit_during_start_up_leaves_no_device, 300)
{
	unsigned int num, index;

	num = probe_free_number(_metadata, self->vtpmx, variant->tpm2);

	/* Exit instead of responding to each of the start-up commands. */
	for (index = 0; index < ARRAY_SIZE(tpm2_startup_steps); index++) {
		struct vtpm_fault fault = {
			.kind = VTPM_FAULT_EXIT,
			.ordinal = VTPM_ANY_ORDINAL,
			.index = index,
		};

		device_reset(&self->dev, variant->tpm2);
		ASSERT_EQ(0, vtpm_emulator_add_fault(&self->dev.emu, &fault));
		ASSERT_EQ(0, device_create(self->vtpmx, &self->dev));
		ASSERT_EQ(num, self->dev.info.tpm_num);
		ASSERT_EQ(0, device_serve(&self->dev));
		ASSERT_EQ(0, vtpm_emulator_wait_hangup(&self->dev.emu,
						       HANGUP_TIMEOUT_MS)) {
			TH_LOG("exit at command %u", index);
		}
		ASSERT_TRUE(wait_unregistered(num, HANGUP_TIMEOUT_MS)) {
			TH_LOG("exit at command %u", index);
		}
	}
	device_reset(&self->dev, variant->tpm2);
	create_registered(_metadata, self->vtpmx, &self->dev);
	ASSERT_EQ(num, self->dev.info.tpm_num);
}

/* Open the kernel log, positioned after the last record. */
static int open_kernel_log(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0 && lseek(fd, 0, SEEK_END) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Count the new kernel log records that contain @text. */
static int count_log_records(int fd, const char *text)
{
	char record[8192];
	int count = 0;
	ssize_t n;

	for (;;) {
		n = read(fd, record, sizeof(record) - 1);
		if (n < 0 && errno == EPIPE)
			continue;	/* records were overwritten */
		if (n <= 0)
			break;
		record[n] = '\0';
		if (strstr(record, text))
			count++;
	}
	return count;
}

/* Make registration fail with a garbage reply to SET_LOCALITY. */
static void fail_registration_silently(struct __test_metadata *_metadata,
				       int vtpmx, struct device *dev)
{
	struct vtpm_fault fault = {
		.kind = VTPM_FAULT_GARBAGE,
		.ordinal = TPM2_CC_SET_LOCALITY,
		.index = VTPM_ANY_INDEX,
	};

	ASSERT_EQ(0, vtpm_emulator_add_fault(&dev->emu, &fault));
	ASSERT_EQ(0, device_create(vtpmx, dev));
	ASSERT_EQ(0, device_serve(dev));
	ASSERT_EQ(0, vtpm_emulator_wait_hangup(&dev->emu, HANGUP_TIMEOUT_MS));
	device_stop(dev);
}

TEST_F(vtpm, failed_registration_logs_one_line)
{
	char device_prefix[32];
	int log;

	log = open_kernel_log();
	if (log < 0)
		SKIP(return, "cannot read /dev/kmsg: %s", strerror(errno));

	/* The TPM core itself logs nothing for a malformed response. */
	fail_registration_silently(_metadata, self->vtpmx, &self->dev);
	sleep_ms(100);

	snprintf(device_prefix, sizeof(device_prefix), "tpm tpm%u:",
		 self->dev.info.tpm_num);
	ASSERT_EQ(1, count_log_records(log, device_prefix));
	close(log);
}

TEST_F_TIMEOUT(vtpm, failed_registration_log_is_rate_limited, 300)
{
	int log, lines;
	unsigned int i;

	log = open_kernel_log();
	if (log < 0)
		SKIP(return, "cannot read /dev/kmsg: %s", strerror(errno));

	for (i = 0; i < NR_LOGGED_FAILURES; i++) {
		device_reset(&self->dev, variant->tpm2);
		fail_registration_silently(_metadata, self->vtpmx, &self->dev);
	}
	sleep_ms(100);

	lines = count_log_records(log, "tpm tpm");
	close(log);
	TH_LOG("%d failed registrations logged %d lines",
	       NR_LOGGED_FAILURES, lines);
	ASSERT_LT(0, lines);
	ASSERT_GT(NR_LOGGED_FAILURES, lines);
}

/* Find vtpm_test_emulator, which the Makefile builds next to this program. */
static int emulator_program_path(char *path, size_t size)
{
	char self_path[PATH_MAX];
	ssize_t n;

	n = readlink("/proc/self/exe", self_path, sizeof(self_path) - 1);
	if (n < 0)
		return -errno;
	self_path[n] = '\0';
	snprintf(path, size, "%s/vtpm_test_emulator", dirname(self_path));
	return 0;
}

/* Read one line from @fd within @timeout_ms; returns its length or -errno. */
static ssize_t read_line(int fd, char *line, size_t size, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t length = 0;

	while (length < size - 1) {
		int ready = poll(&pfd, 1, timeout_ms);

		if (ready <= 0)
			return ready ? -errno : -ETIMEDOUT;
		if (read(fd, line + length, 1) != 1)
			return -EIO;
		if (line[length] == '\n')
			break;
		length++;
	}
	line[length] = '\0';
	return length;
}

TEST_F(vtpm, emulator_program_serves_registered_device)
{
	__u8 command[64], response[VTPM_BUFSIZE];
	char program[PATH_MAX + 32], node[64];
	int output[2], status, fields;
	unsigned int num;
	size_t length;
	pid_t pid;

	ASSERT_EQ(0, emulator_program_path(program, sizeof(program)));
	if (!path_exists(program))
		SKIP(return, "vtpm_test_emulator not found next to this program");
	ASSERT_EQ(0, pipe(output));

	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		dup2(output[1], STDOUT_FILENO);
		execl(program, program, variant->tpm2 ? "--tpm2" : "--tpm12",
		      "--seconds", "60", NULL);
		_exit(127);
	}
	close(output[1]);

	/* It prints the node once the device is registered. */
	ASSERT_LT(0, read_line(output[0], node, sizeof(node),
			       REGISTER_TIMEOUT_MS));
	close(output[0]);
	fields = sscanf(node, "/dev/tpm%u", &num);
	ASSERT_EQ(1, fields) {
		TH_LOG("unexpected output: %s", node);
	}
	ASSERT_TRUE(path_exists(node));

	length = client_command(variant->tpm2, command);
	ASSERT_LT(0, transmit(node, command, length, response,
			      sizeof(response)));
	ASSERT_EQ(0, response_code(response));

	ASSERT_EQ(0, kill(pid, SIGTERM));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	ASSERT_EQ(0, WEXITSTATUS(status));
	ASSERT_TRUE(wait_unregistered(num, HANGUP_TIMEOUT_MS));
}

static int delete_module(const char *name)
{
	return syscall(SYS_delete_module, name, O_NONBLOCK) ? -errno : 0;
}

static int load_module(const char *path)
{
	size_t length = strlen(path);
	int flags = 0, fd, rc;

	if (length > 3 && !strcmp(path + length - 3, ".xz"))
		flags = MODULE_INIT_COMPRESSED_FILE;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	rc = syscall(SYS_finit_module, fd, "", flags) ? -errno : 0;
	close(fd);
	return rc;
}

static void reload_module_if_unloaded(struct __test_metadata *_metadata)
{
	const char *path = getenv("VTPM_PROXY_MODULE");

	if (!path || path_exists("/sys/module/" MODULE_NAME))
		return;
	EXPECT_EQ(0, load_module(path)) {
		TH_LOG("cannot reload %s", path);
	}
}

static ssize_t read_srcversion(char *text, size_t size)
{
	return read_file("/sys/module/" MODULE_NAME "/srcversion", text, size);
}

/* Runs last: if reloading fails, the tests after it could not run. */
TEST_F(vtpm, module_unload_refused_while_fds_open)
{
	const char *path = getenv("VTPM_PROXY_MODULE");
	char before[64], after[64];

	if (!path)
		SKIP(return, "VTPM_PROXY_MODULE is not set: no module to reload after unloading");
	ASSERT_LT(0, read_srcversion(before, sizeof(before)));

	/* An open server fd keeps the module in use. */
	ASSERT_EQ(0, device_create(self->vtpmx, &self->dev));
	ASSERT_EQ(0, close(self->vtpmx));
	self->vtpmx = -1;
	ASSERT_EQ(-EWOULDBLOCK, delete_module(MODULE_NAME));

	/* So does an open /dev/vtpmx. */
	self->vtpmx = open("/dev/vtpmx", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->vtpmx);
	device_close(&self->dev);
	ASSERT_EQ(-EWOULDBLOCK, delete_module(MODULE_NAME));

	ASSERT_EQ(0, close(self->vtpmx));
	self->vtpmx = -1;
	ASSERT_EQ(0, delete_module(MODULE_NAME));
	ASSERT_FALSE(path_exists("/dev/vtpmx"));

	ASSERT_EQ(0, load_module(path));
	ASSERT_LT(0, read_srcversion(after, sizeof(after)));
	ASSERT_STREQ(before, after);
	ASSERT_TRUE(wait_for_path("/dev/vtpmx", true, REGISTER_TIMEOUT_MS));

	self->vtpmx = open("/dev/vtpmx", O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, self->vtpmx);
	device_reset(&self->dev, variant->tpm2);
	create_registered(_metadata, self->vtpmx, &self->dev);
	check_round_trip(_metadata, &self->dev, "tpm");
}

TEST_HARNESS_MAIN

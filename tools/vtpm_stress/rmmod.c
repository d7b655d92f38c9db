// SPDX-License-Identifier: GPL-2.0
/*
 * Lane "rmmod": one thread calls delete_module("tpm_vtpm_proxy",
 * O_NONBLOCK) in a loop while two others open /dev/vtpmx, create,
 * register and close devices, and pause in between. The call must fail
 * with EWOULDBLOCK (or EBUSY while the module is loading or unloading)
 * as long as /dev/vtpmx or a server fd is open, and may succeed only when
 * none is. After an unload the module is loaded again from its file
 * (finit_module), and the users carry on.
 *
 * A client may keep /dev/tpmN open past the end of its device and past an
 * unload of the module: its next command must fail with EPIPE, and its
 * close() must be clean. Each user keeps the client of its first
 * registered device, so even a short run checks one. A client that is
 * still open when its user ends is checked after the final unload.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "vtpm_stress.h"

#define MODULE_NAME		"tpm_vtpm_proxy"
#define MODULE_SYSFS		"/sys/module/" MODULE_NAME
#define NR_USERS		2
/* Maximum pause of a user between two sessions, in milliseconds. */
#define MAX_PAUSE_MS		20

enum {
	CHECK_OPEN_VTPMX,
	CHECK_CREATE,
	CHECK_REGISTERS,
	CHECK_REFUSED_ERRNO,
	CHECK_NOT_WHILE_OPEN,
	CHECK_UNLOADS,
	CHECK_RELOAD,
	CHECK_RELOADED_IS_OURS,
	CHECK_STALE_CLIENT,
	CHECK_FINAL_UNLOAD,
	NR_CHECKS,
};

static struct stress_check checks[NR_CHECKS] = {
	[CHECK_OPEN_VTPMX] = {
		"open() of /dev/vtpmx succeeds, or fails with ENOENT, ENODEV or ENXIO while the module is unloaded",
	},
	[CHECK_CREATE] = {
		"VTPM_PROXY_IOC_NEW_DEV creates a device between unloads",
	},
	[CHECK_REGISTERS] = {
		"every device registers between unloads",
	},
	[CHECK_REFUSED_ERRNO] = {
		"a refused delete_module() fails with EWOULDBLOCK or EBUSY",
	},
	[CHECK_NOT_WHILE_OPEN] = {
		"delete_module() never succeeds while /dev/vtpmx or a server fd is open",
	},
	[CHECK_UNLOADS] = {
		"the module unloads while devices come and go, whenever nothing is open",
	},
	[CHECK_RELOAD] = {
		"finit_module() loads the module again and /dev/vtpmx comes back",
	},
	[CHECK_RELOADED_IS_OURS] = {
		"the module loaded again is ours (taint O, same srcversion)",
	},
	[CHECK_STALE_CLIENT] = {
		"a client that keeps /dev/tpmN open past its device and an unload gets EPIPE",
	},
	[CHECK_FINAL_UNLOAD] = {
		"delete_module() succeeds once every fd is closed",
	},
};

/**
 * struct user - a thread that opens /dev/vtpmx and makes devices
 * @thread:  the thread
 * @random:  its stream of random numbers
 * @lives:   device lives still to run
 * @opens:   fds opened so far (/dev/vtpmx and server fds); counted after
 *           the open succeeds
 * @closes:  fds closed so far; counted before close() is called
 * @stale_client: a client fd of /dev/tpmN kept past its device, or -1
 * @stale_tpm2: whether that device was a TPM 2.0
 * @kept_client: whether the user has kept a client yet
 *
 * @opens and @closes are read by the unloader with __atomic_load_n().
 * When @opens exceeds @closes both before and after a delete_module()
 * call, and @closes did not change in between, an fd was open through
 * the whole call.
 */
struct user {
	pthread_t thread;
	struct stress_random random;
	unsigned long lives;
	unsigned long opens;
	unsigned long closes;
	int stale_client;
	bool stale_tpm2;
	bool kept_client;
};

static struct user users[NR_USERS];
static int users_left = NR_USERS;
static const char *module_path;
static char module_srcversion[64];
static unsigned long unloads, refusals;

static void count_open(struct user *user)
{
	__atomic_add_fetch(&user->opens, 1, __ATOMIC_SEQ_CST);
}

static void close_counted(struct user *user, int fd)
{
	__atomic_add_fetch(&user->closes, 1, __ATOMIC_SEQ_CST);
	close(fd);
}

static int delete_module(const char *name, unsigned int flags)
{
	return syscall(SYS_delete_module, name, flags) ? -errno : 0;
}

static int load_module(const char *path)
{
	int fd, rc = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (syscall(SYS_finit_module, fd, "", 0))
		rc = -errno;
	close(fd);
	return rc;
}

/* Read a one-line sysfs file of the module into @value, without "\n". */
static void read_module_file(const char *name, char *value, size_t size)
{
	char path[128];
	ssize_t n = -1;
	int fd;

	snprintf(path, sizeof(path), MODULE_SYSFS "/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, value, size - 1);
		close(fd);
	}
	value[n > 0 ? n : 0] = '\0';
	value[strcspn(value, "\n")] = '\0';
}

/* Open /dev/vtpmx, waiting while the module is unloaded; -1 on failure. */
static int open_vtpmx(struct user *user)
{
	__u64 deadline = now_ms() + STRESS_WAIT_MS;
	int fd;

	for (;;) {
		fd = vtpmx_open();
		if (fd >= 0) {
			count_open(user);
			check_pass(&checks[CHECK_OPEN_VTPMX]);
			return fd;
		}
		if (fd != -ENOENT && fd != -ENODEV && fd != -ENXIO) {
			check_fail(&checks[CHECK_OPEN_VTPMX], "%s",
				   strerror(-fd));
			return -1;
		}
		if (now_ms() > deadline) {
			check_fail(&checks[CHECK_OPEN_VTPMX],
				   "/dev/vtpmx missing for %d ms: %s",
				   STRESS_WAIT_MS, strerror(-fd));
			return -1;
		}
		sleep_ms(1);
	}
}

/* Send a command on a client fd whose device is gone: expect EPIPE. */
static void check_stale_client(int client, bool tpm2)
{
	__u8 command[16];
	size_t length;
	ssize_t n;

	length = tpm_getrandom_command(tpm2, STRESS_RANDOM_BYTES, command);
	n = write(client, command, length);
	check_true(&checks[CHECK_STALE_CLIENT], n < 0 && errno == EPIPE,
		   "write() returned %zd (%s)", n,
		   n < 0 ? strerror(errno) : "no error");
	close(client);
}

/*
 * Run one device life. When @user has no client open, the life may keep
 * a client fd of /dev/tpmN open for a later session to check. The first
 * registered life of a user always keeps one.
 */
static void user_life(struct user *user, int vtpmx)
{
	bool tpm2 = random_percent(&user->random, 50);
	struct stress_dev dev;
	char path[64];
	int rc;

	rc = stress_dev_create(vtpmx, tpm2, &dev);
	if (!check_true(&checks[CHECK_CREATE], rc == 0, "%s", strerror(-rc)))
		return;
	count_open(user);

	/* A fifth of the lives end before their registration does. */
	if (random_percent(&user->random, 80)) {
		rc = stress_dev_register(&dev, STRESS_WAIT_MS);
		check_true(&checks[CHECK_REGISTERS], rc == 0,
			   "TPM %s tpm%u: %s", tpm2 ? "2.0" : "1.2", dev.num,
			   strerror(-rc));
		if (!rc && user->stale_client < 0 &&
		    (!user->kept_client ||
		     random_percent(&user->random, 20))) {
			tpm_path(path, sizeof(path), "tpm", dev.num);
			user->stale_client = open(path, O_RDWR | O_CLOEXEC);
			user->stale_tpm2 = tpm2;
			user->kept_client = true;
		}
	}

	__atomic_add_fetch(&user->closes, 1, __ATOMIC_SEQ_CST);
	stress_dev_close(&dev);
}

static void *user_main(void *arg)
{
	struct user *user = arg;
	unsigned int session;
	int vtpmx;

	while (user->lives) {
		vtpmx = open_vtpmx(user);
		if (vtpmx < 0)
			break;
		for (session = 1 + random_below(&user->random, 3);
		     session && user->lives; session--) {
			user_life(user, vtpmx);
			__atomic_sub_fetch(&user->lives, 1, __ATOMIC_RELAXED);
		}
		close_counted(user, vtpmx);

		if (user->stale_client >= 0 &&
		    random_percent(&user->random, 50)) {
			check_stale_client(user->stale_client,
					   user->stale_tpm2);
			user->stale_client = -1;
		}
		sleep_ms(random_below(&user->random, MAX_PAUSE_MS));
	}
	__atomic_sub_fetch(&users_left, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Device lives that the users have still to run. */
static unsigned long lives_left(void)
{
	unsigned long left = 0;
	unsigned int i;

	for (i = 0; i < NR_USERS; i++)
		left += __atomic_load_n(&users[i].lives, __ATOMIC_RELAXED);
	return left;
}

/* Wait up to STRESS_WAIT_MS for /dev/vtpmx after a load. */
static bool wait_vtpmx(void)
{
	__u64 deadline = now_ms() + STRESS_WAIT_MS;

	while (access("/dev/vtpmx", F_OK)) {
		if (now_ms() > deadline)
			return false;
		sleep_ms(1);
	}
	return true;
}

static void reload(void)
{
	char taint[16], srcversion[64];
	int rc;

	rc = load_module(module_path);
	if (!check_true(&checks[CHECK_RELOAD], rc == 0 && wait_vtpmx(),
			"finit_module(%s): %s", module_path,
			rc ? strerror(-rc) : "/dev/vtpmx did not appear")) {
		stress_give_up(checks, NR_CHECKS,
			       "the module could not be loaded again");
	}
	read_module_file("taint", taint, sizeof(taint));
	read_module_file("srcversion", srcversion, sizeof(srcversion));
	check_true(&checks[CHECK_RELOADED_IS_OURS],
		   strchr(taint, 'O') &&
		   !strcmp(srcversion, module_srcversion),
		   "taint '%s', srcversion '%s' (expected '%s')", taint,
		   srcversion, module_srcversion);
}

/*
 * One delete_module() attempt, checked against what the users held
 * before and after it.
 */
static void try_unload(struct stress_random *random)
{
	unsigned long opens[NR_USERS], closes[NR_USERS];
	unsigned int i;
	int rc;

	for (i = 0; i < NR_USERS; i++) {
		closes[i] = __atomic_load_n(&users[i].closes, __ATOMIC_SEQ_CST);
		opens[i] = __atomic_load_n(&users[i].opens, __ATOMIC_SEQ_CST);
	}
	rc = delete_module(MODULE_NAME, O_NONBLOCK);
	if (rc) {
		refusals++;
		check_true(&checks[CHECK_REFUSED_ERRNO],
			   rc == -EWOULDBLOCK || rc == -EBUSY, "%s",
			   strerror(-rc));
		return;
	}

	unloads++;
	for (i = 0; i < NR_USERS; i++) {
		bool held = opens[i] > closes[i] &&
			    __atomic_load_n(&users[i].closes,
					    __ATOMIC_SEQ_CST) == closes[i];

		check_true(&checks[CHECK_NOT_WHILE_OPEN], !held,
			   "user %u had %lu fds open through the call", i,
			   opens[i] - closes[i]);
	}
	sleep_ms(random_below(random, 5));
	reload();
}

int lane_rmmod(const struct lane_options *options)
{
	struct stress_random random;
	unsigned int i;
	__u64 start;
	int rc;

	if (!options->module) {
		fprintf(stderr,
			"vtpm_stress rmmod: -m MODULE.ko is required, to load the module again\n");
		return 2;
	}
	module_path = options->module;
	read_module_file("srcversion", module_srcversion,
			 sizeof(module_srcversion));
	random_init(&random, options->seed, NR_USERS);

	start = now_ms();
	for (i = 0; i < NR_USERS; i++) {
		random_init(&users[i].random, options->seed, i);
		users[i].stale_client = -1;
		users[i].lives = options->count / NR_USERS +
				 (i < options->count % NR_USERS);
		if (pthread_create(&users[i].thread, NULL, user_main,
				   &users[i])) {
			perror("pthread_create");
			return 1;
		}
	}

	while (__atomic_load_n(&users_left, __ATOMIC_ACQUIRE)) {
		try_unload(&random);
		sleep_ms(random_below(&random, 3));
		stress_progress(options->count - lives_left(), options->count);
	}
	for (i = 0; i < NR_USERS; i++)
		pthread_join(users[i].thread, NULL);

	check_true(&checks[CHECK_UNLOADS], unloads > 0,
		   "no unload in %lu attempts", refusals);
	rc = delete_module(MODULE_NAME, O_NONBLOCK);
	check_true(&checks[CHECK_FINAL_UNLOAD], rc == 0, "%s", strerror(-rc));
	if (!rc)
		reload();
	for (i = 0; i < NR_USERS; i++) {
		if (users[i].stale_client >= 0)
			check_stale_client(users[i].stale_client,
					   users[i].stale_tpm2);
	}

	stress_info("%lu device lives in %llu ms; %lu unloads, %lu refusals",
		    options->count, (unsigned long long)(now_ms() - start),
		    unloads, refusals);
	return check_report(checks, NR_CHECKS) ? 1 : 0;
}

// SPDX-License-Identifier: GPL-2.0
/*
 * Lane "probe", run after every other lane: nothing of the previous lane
 * is left behind. No TPM chip remains, the next device gets chip number
 * 0 (every number handed out before was returned), and that device
 * registers, serves a command and goes away on close.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "vtpm_stress.h"

enum {
	CHECK_NO_CHIPS,
	CHECK_NUMBER_ZERO,
	CHECK_REGISTERS,
	CHECK_COMMAND,
	CHECK_REMOVED,
	NR_CHECKS,
};

/* List the chips in /sys/class/tpm into @names; returns how many. */
static unsigned int list_chips(char *names, size_t size)
{
	DIR *dir = opendir("/sys/class/tpm");
	unsigned int count = 0;
	struct dirent *entry;
	size_t used = 0;

	names[0] = '\0';
	if (!dir)
		return 0;
	while ((entry = readdir(dir))) {
		if (entry->d_name[0] == '.')
			continue;
		count++;
		if (used < size)
			used += snprintf(names + used, size - used, " %s",
					 entry->d_name);
	}
	closedir(dir);
	return count;
}

int lane_probe(const struct lane_options *options)
{
	struct stress_check checks[NR_CHECKS] = {
		[CHECK_NO_CHIPS] = {
		"no TPM chip is left in /sys/class/tpm",
	},
		[CHECK_NUMBER_ZERO] = {
		"the next device created is /dev/tpm0 (tpm_num 0)",
	},
		[CHECK_REGISTERS] = {
		"that device registers: /dev/tpm0 and /dev/tpmrm0 appear",
	},
		[CHECK_COMMAND] = {
		"TPM2_GetRandom through /dev/tpmrm0 succeeds",
	},
		[CHECK_REMOVED] = {
		"closing the server fd removes /dev/tpm0 and /dev/tpmrm0",
	},
	};
	struct stress_dev dev;
	char names[256], path[64];
	unsigned int chips;
	int vtpmx, client, rc;

	chips = list_chips(names, sizeof(names));
	check_true(&checks[CHECK_NO_CHIPS], chips == 0, "found%s", names);

	vtpmx = vtpmx_open();
	if (vtpmx < 0) {
		stress_info("opening /dev/vtpmx failed: %s", strerror(-vtpmx));
		return check_report(checks, NR_CHECKS) ? 1 : 0;
	}
	rc = stress_dev_create(vtpmx, true, &dev);
	close(vtpmx);
	if (rc) {
		check_fail(&checks[CHECK_NUMBER_ZERO],
			   "VTPM_PROXY_IOC_NEW_DEV failed: %s", strerror(-rc));
		return check_report(checks, NR_CHECKS) ? 1 : 0;
	}
	check_true(&checks[CHECK_NUMBER_ZERO], dev.num == 0,
		   "got tpm_num %u", dev.num);

	rc = stress_dev_register(&dev, STRESS_WAIT_MS);
	if (check_true(&checks[CHECK_REGISTERS], rc == 0,
		       "registration of tpm%u: %s", dev.num, strerror(-rc))) {
		tpm_path(path, sizeof(path), "tpmrm", dev.num);
		client = open(path, O_RDWR | O_CLOEXEC);
		if (client < 0) {
			rc = -errno;
		} else {
			rc = tpm_client_transact(client, true, &dev);
			close(client);
		}
		check_true(&checks[CHECK_COMMAND], rc == 0, "%s: %s", path,
			   strerror(-rc));
	}

	stress_dev_close(&dev);
	check_true(&checks[CHECK_REMOVED], tpm_nodes_gone(dev.num),
		   "/dev/tpm%u, /dev/tpmrm%u or its sysfs folder still exists",
		   dev.num, dev.num);
	return check_report(checks, NR_CHECKS) ? 1 : 0;
}

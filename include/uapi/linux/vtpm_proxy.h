/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * Userspace interface of the vTPM proxy driver.
 *
 * An ioctl on /dev/vtpmx creates a TPM chip whose commands are served by a
 * TPM emulator in userspace through a file descriptor (the server fd).
 */
#ifndef _UAPI_LINUX_VTPM_PROXY_H
#define _UAPI_LINUX_VTPM_PROXY_H

#include <linux/ioctl.h>
#include <linux/types.h>

/**
 * enum vtpm_proxy_flags - flags for &struct vtpm_proxy_new_dev
 * @VTPM_PROXY_FLAG_TPM2: create a TPM 2.0 chip; without it the chip is
 *                        a TPM 1.2
 *
 * Any other bit makes %VTPM_PROXY_IOC_NEW_DEV fail with %EOPNOTSUPP.
 */
enum vtpm_proxy_flags {
	VTPM_PROXY_FLAG_TPM2	= 1,
};

/**
 * struct vtpm_proxy_new_dev - argument of %VTPM_PROXY_IOC_NEW_DEV
 * @flags:   input: a combination of &enum vtpm_proxy_flags
 * @tpm_num: output: N of the new /dev/tpmN (and /dev/tpmrmN for TPM 2.0)
 * @fd:      output: the server fd, open for reading and writing, without
 *           close-on-exec; the TPM emulator reads commands from it and
 *           writes responses to it
 * @major:   output: major number of /dev/tpmN
 * @minor:   output: minor number of /dev/tpmN
 *
 * The layout is the same for 32-bit and 64-bit callers: five 32-bit
 * fields, 20 bytes, no padding.
 */
struct vtpm_proxy_new_dev {
	__u32 flags;
	__u32 tpm_num;
	__u32 fd;
	__u32 major;
	__u32 minor;
};

/**
 * define VTPM_PROXY_IOC_NEW_DEV - create a vTPM device and its server fd
 *
 * Issued on /dev/vtpmx with a pointer to &struct vtpm_proxy_new_dev.
 * Requires %CAP_SYS_ADMIN. The call returns before the chip is registered:
 * registration needs the emulator to answer the TPM core's start-up
 * commands, so /dev/tpmN appears once the emulator serves the fd.
 */
#define VTPM_PROXY_IOC_NEW_DEV	_IOWR(0xa1, 0x00, struct vtpm_proxy_new_dev)

/*
 * Vendor-specific command that the driver sends to change the locality.
 * The TPM 2.0 command code and the TPM 1.2 ordinal have the same value.
 * Clients of /dev/tpmN cannot send it; only the driver does.
 */
#define TPM2_CC_SET_LOCALITY	0x20001000
#define TPM_ORD_SET_LOCALITY	0x20001000

#endif /* _UAPI_LINUX_VTPM_PROXY_H */

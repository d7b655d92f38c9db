/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The few TPM core declarations that the vTPM proxy driver needs and that
 * live only in the core's private header (drivers/char/tpm/tpm.h). Kernel
 * headers packages do not ship that header, so an out-of-tree build gets
 * them from here. The functions are exported by the core (GPL); the
 * declarations below match their definitions in Linux 6.1 and 6.12, the
 * series this driver is built and tested on, and are compatible
 * redeclarations when the driver is built inside a kernel tree.
 */
#ifndef _VTPM_PROXY_COMPAT_H
#define _VTPM_PROXY_COMPAT_H

#include <linux/tpm.h>
#include <linux/types.h>
#include <linux/version.h>

/* Size of the TPM core's command and response buffer. */
#define VTPM_PROXY_TPM_BUFSIZE		4096

/* TPM 1.2 tag of a command without authorization sessions. */
#define VTPM_PROXY_TPM_TAG_RQU_COMMAND	0x00c1

struct tpm_chip *tpm_chip_alloc(struct device *pdev,
				const struct tpm_class_ops *ops);
int tpm_chip_register(struct tpm_chip *chip);
void tpm_chip_unregister(struct tpm_chip *chip);
ssize_t tpm_transmit_cmd(struct tpm_chip *chip, struct tpm_buf *buf,
			 size_t min_rsp_body_length, const char *desc);
unsigned long tpm_calc_ordinal_duration(struct tpm_chip *chip, u32 ordinal);

/*
 * Linux 6.15 gave the chip's send callback the size of the buffer as well
 * as the length of the command. VTPM_PROXY_SEND_PARAMS is the parameter
 * list of our send callback for either form; the body uses chip, buf and
 * count.
 *
 * NOTE: only the form before 6.15 is built and tested here.
 */
#if KERNEL_VERSION(LINUX_VERSION_MAJOR, LINUX_VERSION_PATCHLEVEL, 0) >= \
	KERNEL_VERSION(6, 15, 0)
#define VTPM_PROXY_SEND_PARAMS \
	struct tpm_chip *chip, u8 *buf, size_t bufsize, size_t count
#else
#define VTPM_PROXY_SEND_PARAMS struct tpm_chip *chip, u8 *buf, size_t count
#endif

#endif /* _VTPM_PROXY_COMPAT_H */

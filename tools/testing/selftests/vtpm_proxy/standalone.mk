# SPDX-License-Identifier: GPL-2.0
#
# Build this folder outside a kernel tree: take lib.mk and the kselftest
# harness from Debian's linux-source-6.12, extracted into the repository's
# build/ folder, and compile against the repository's uapi header, which
# then comes before the system's /usr/include/linux/vtpm_proxy.h.
# Output goes to build/selftests/ unless OUTPUT is set.

repo := $(abspath $(CURDIR)/../../../..)
kernel_source := $(repo)/build/linux-source-6.12
harness_dir := $(kernel_source)/tools/testing/selftests

OUTPUT ?= $(repo)/build/selftests
KHDR_INCLUDES ?= -isystem $(repo)/include/uapi

$(shell mkdir -p $(OUTPUT))

include $(harness_dir)/lib.mk

# make rebuilds a missing included makefile with this rule, then restarts.
$(harness_dir)/lib.mk $(harness_dir)/kselftest_harness.h $(harness_dir)/kselftest.h:
	$(repo)/scripts/extract-linux-source.sh \
		tools/testing/selftests/lib.mk \
		tools/testing/selftests/kselftest_harness.h \
		tools/testing/selftests/kselftest.h

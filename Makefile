# SPDX-License-Identifier: GPL-2.0
#
# Out-of-tree build of the vTPM proxy driver, and the project's entry
# points. See README.md.
#
#   make              build tpm_vtpm_proxy.ko against KDIR
#   make KDIR=DIR     build against the kernel tree or headers in DIR
#   make clean        remove what the build made
#   make htmldocs     build the HTML documentation into build/htmldocs
#   make demo         build, boot a QEMU guest per kernel series, load the
#                     driver and show swtpm and tpm2-tools using it
#   make check        run every test lane; the last line is "N passed, N failed"
#   make stress       the stress, fault and fuzz lanes at full size in a QEMU
#                     guest per kernel series (about 40 minutes each);
#                     make check runs them at a twentieth of that size
#   make bench        benchmark the driver against Debian's in a QEMU guest
#                     per kernel series; results in build/bench/ and
#                     BENCHMARKS.md
#
# demo, check and bench take SERIES=6.1 and/or 6.12 (default both); demo also
# takes MODULE=ours|debian|PATH.ko, check takes LANES="NAME...".
# stress takes SERIES too, and SEED=N to repeat the random choices of
# an earlier run.

KDIR ?= /lib/modules/$(shell uname -r)/build
# CONFIG_MODULE_SRCVERSION_ALL=y gives the module a srcversion although it
# has no MODULE_VERSION, so that /sys/module/tpm_vtpm_proxy/srcversion
# tells our build from the distribution's module of the same name.
MODDIR := $(CURDIR)/drivers/char/tpm
SERIES ?= 6.1 6.12
MODULE ?= ours
LANES ?=
SEED ?=

all: modules

modules:
	@test -d "$(KDIR)" || { echo "error: kernel headers not found at $(KDIR); install linux-headers-$$(uname -r) or set KDIR" >&2; exit 1; }
	$(MAKE) -C "$(KDIR)" M="$(MODDIR)" CONFIG_TCG_VTPM_PROXY=m \
		CONFIG_MODULE_SRCVERSION_ALL=y modules

clean:
	rm -f $(MODDIR)/*.o $(MODDIR)/*.ko $(MODDIR)/*.mod $(MODDIR)/*.mod.c \
		$(MODDIR)/.*.cmd $(MODDIR)/modules.order $(MODDIR)/Module.symvers
	rm -rf build

htmldocs:
	$(CURDIR)/scripts/check-docs.sh htmldocs

demo:
	$(CURDIR)/scripts/demo.sh -m "$(MODULE)" $(SERIES)

check:
	@SERIES="$(SERIES)" $(CURDIR)/scripts/check.sh $(LANES)

stress:
	SERIES="$(SERIES)" SEED="$(SEED)" $(CURDIR)/scripts/stress.sh -z full

bench:
	$(CURDIR)/scripts/bench.sh $(SERIES)

.PHONY: all modules clean htmldocs demo check bench stress

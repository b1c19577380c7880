# husk - the two commands of the README, and their parts.
# SPDX-License-Identifier: GPL-3.0-or-later
PYTHON ?= python3
HUSK = $(shell $(PYTHON) -c 'import os,sys; print(os.path.join(os.path.dirname(sys.executable), "husk"))')

.PHONY: deps demo test unit bench clean

deps:
	PYTHON=$(PYTHON) ./scripts/install-deps.sh

# Build everything, load the built-in busybox image into the store as
# busybox:latest and run a container from it.
demo: deps
	$(HUSK) load -q --name busybox -i rootfs/build/oci
	$(HUSK) run --rm --pull=never busybox echo "hello from a husk container"

# Build everything and run the whole test suite.
test: deps
	$(PYTHON) -I -m pytest -ra tests  # -I: import the installed husk, not ./runtime

# The unit tests alone: no root, seconds (tests/unit).
unit:
	$(PYTHON) -I -m pytest -q tests/unit

bench: deps
	$(PYTHON) bench/run_bench.py

clean:
	rm -rf rootfs/build runtime/_bin build *.egg-info

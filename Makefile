# `make demo` and `make test` do all set-up on a fresh Debian machine (as root).
PREFIX ?= /usr/local
PYTEST_ARGS ?=

.PHONY: setup demo demo-containerd lint test bench-cgroup2 test-cgroup2 test-systemd test-systemd-v1 test-checkpoint unit e2e conformance bench install clean

setup:
	sh scripts/setup.sh

demo: setup
	sh scripts/demo.sh

# A busybox container run by a private containerd (ctr, the runc v2 shim) on pyrunc.
demo-containerd: setup
	.venv/bin/python scripts/demo-containerd.py

# ruff (pyproject.toml [tool.ruff]): lint and format check over the whole tree; mypy
# ([tool.mypy]) over pyrunc/, every function typed; and the public-annotation test.
lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	.venv/bin/mypy
	.venv/bin/python -m pytest -q -p no:cacheprovider tests/unit/test_annotations.py

test: setup lint
	.venv/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) tests
	sh scripts/conformance-check.sh
	sh scripts/cgroup2-vm.sh
	sh scripts/systemd-vm.sh
	SYSTEMD_VM_CGROUP=hybrid sh scripts/systemd-vm.sh
	sh scripts/checkpoint-vm.sh

# tests/cgroup as root in a qemu guest with pure cgroup v2 (docs/testing.md); sets up
# qemu and Debian's kernel on first use, skips with a reason where it cannot run.
test-cgroup2: setup
	sh scripts/cgroup2-vm.sh

# tests/systemd as root in a qemu guest with systemd as PID 1 on the unified hierarchy
# (docs/testing.md); set up and skipped as test-cgroup2 is.
test-systemd: setup
	sh scripts/systemd-vm.sh

# The same on the legacy/hybrid layout (systemd.unified_cgroup_hierarchy=0: v1 controllers plus
# /sys/fs/cgroup/unified).
test-systemd-v1: setup
	SYSTEMD_VM_CGROUP=hybrid sh scripts/systemd-vm.sh

# tests/checkpoint (checkpoint and restore with CRIU) as root in a qemu guest on Debian's own
# kernel, which Debian's CRIU knows (docs/checkpoint.md); set up and skipped as test-cgroup2 is.
test-checkpoint: setup
	sh scripts/checkpoint-vm.sh

# pyrunc under real engines: containerd, CRI, podman, Docker (tests/e2e/README.md); part of `make test`.
e2e: setup
	.venv/bin/python -m pytest -q -p no:cacheprovider tests/e2e

unit: setup
	.venv/bin/python -m pytest -q -p no:cacheprovider tests/unit

# The OCI runtime-tools suite against pyrunc, then runc when installed, then docs/conformance.md
# (conformance/README.md).  Failing tests do not fail this target; the record is the report.
conformance: setup
	conformance/run --runtime .venv/bin/pyrunc || true
	if command -v runc >/dev/null 2>&1; then conformance/run --runtime "$$(command -v runc)" || true; fi
	conformance/report || [ $$? -eq 77 ]

# pyrunc against runc (and crun where it works), side by side, then docs/performance.md
# (bench/README.md).  Reports only: no timing is asserted, and it is not part of `make test`.
# BENCH_ARGS passes options on (--runs N, --only NAME..., --no-write); BENCH_PYRUNC, another pyrunc.
BENCH_PYRUNC ?= $(CURDIR)/.venv/bin/pyrunc
# `run` and create + start + wait + delete beside runc in the pure cgroup v2 guest of
# test-cgroup2, where the init is born in its cgroup (emulated under tcg: a report, not a
# target; docs/performance.md).
bench-cgroup2: setup
	CGROUP2_VM_COMMAND='.venv/bin/python bench/run.py --pyrunc $(BENCH_PYRUNC) --only run lifecycle --runs 10 --no-write' sh scripts/cgroup2-vm.sh

BENCH_ARGS ?=
bench: setup
	command -v strace >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace >/dev/null; }
	.venv/bin/python bench/run.py --pyrunc $(BENCH_PYRUNC) $(BENCH_ARGS)

# The command, its man pages and bash completion (both generated from the command table).
# The command is the launcher every user can execute (.venv-users, scripts/setup-users.sh),
# root's .venv one only where setup-users.sh could not build it.
install: setup
	install -d $(PREFIX)/bin $(PREFIX)/share/man/man8 $(PREFIX)/share/bash-completion/completions
	if [ -x .venv-users/bin/pyrunc ]; then ln -sf "$$(readlink -f .venv-users/bin/pyrunc)" $(PREFIX)/bin/pyrunc; \
	else ln -sf $(CURDIR)/.venv/bin/pyrunc $(PREFIX)/bin/pyrunc; fi
	.venv/bin/python -m pyrunc.cli.manpages $(PREFIX)/share/man/man8
	.venv/bin/python -m pyrunc.cli.completion $(PREFIX)/share/bash-completion/completions/pyrunc

clean:
	rm -rf demo .venv .venv-users build *.egg-info .cache

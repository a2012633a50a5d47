# `make demo` and `make test` do all set-up on a fresh Debian machine (as root).
PREFIX ?= /usr/local
PYTEST_ARGS ?=

.PHONY: setup demo demo-containerd lint test test-cgroup2 unit e2e conformance bench install clean

setup:
	sh scripts/setup.sh

demo: setup
	sh scripts/demo.sh

# A busybox container run by a private containerd (ctr, the runc v2 shim) on pyrunc.
demo-containerd: setup
	.venv/bin/python scripts/demo-containerd.py

# ruff (pyproject.toml [tool.ruff]) over the whole tree, its formatter over the files
# formatted so far, mypy ([tool.mypy]) over pyrunc/, and the public-annotation test.
# DEFERRED (issue 20): FORMATTED becomes `.` once the other branches are merged and formatted.
FORMATTED = \
	pyrunc/__init__.py \
	pyrunc/__main__.py \
	pyrunc/cli/__init__.py \
	pyrunc/cli/commands.py \
	pyrunc/cli/completion.py \
	pyrunc/cli/flags.py \
	pyrunc/cli/manpages.py \
	pyrunc/cli/update.py \
	pyrunc/config/__init__.py \
	pyrunc/config/compile_schema.py \
	pyrunc/config/default.py \
	pyrunc/config/model.py \
	pyrunc/config/patterns.py \
	pyrunc/config/schema.py \
	pyrunc/config/semantic.py \
	pyrunc/config/validate.py \
	pyrunc/control.py \
	pyrunc/errors.py \
	pyrunc/exec_in.py \
	pyrunc/features.py \
	pyrunc/image \
	pyrunc/jsonc.py \
	pyrunc/launcher \
	pyrunc/lifecycle.py \
	pyrunc/linux/capabilities.py \
	pyrunc/linux/cgroupfs.py \
	pyrunc/linux/cgroups/__init__.py \
	pyrunc/linux/cgroups/convert.py \
	pyrunc/linux/cgroups/devices_bpf.py \
	pyrunc/linux/cgroups/devices_v1.py \
	pyrunc/linux/cgroups/files.py \
	pyrunc/linux/cgroups/sub.py \
	pyrunc/linux/cgroups/v1.py \
	pyrunc/linux/cgroups/v2.py \
	pyrunc/linux/child_death.py \
	pyrunc/linux/devices.py \
	pyrunc/linux/ffi.py \
	pyrunc/linux/hooks.py \
	pyrunc/linux/init.py \
	pyrunc/linux/join.py \
	pyrunc/linux/host_mounts.py \
	pyrunc/linux/kernel.py \
	pyrunc/linux/mount_sources.py \
	pyrunc/linux/mounts.py \
	pyrunc/linux/namespaces.py \
	pyrunc/linux/netdevices.py \
	pyrunc/linux/network.py \
	pyrunc/linux/passed_fds.py \
	pyrunc/linux/paths.py \
	pyrunc/linux/placement.py \
	pyrunc/linux/proc_writes.py \
	pyrunc/linux/process.py \
	pyrunc/linux/procfs.py \
	pyrunc/linux/proctitle.py \
	pyrunc/linux/program.py \
	pyrunc/linux/requests.py \
	pyrunc/linux/protocol.py \
	pyrunc/linux/resctrl.py \
	pyrunc/linux/rootfs.py \
	pyrunc/linux/sealed_exe.py \
	pyrunc/linux/seccomp.py \
	pyrunc/linux/seccomp_enosys.py \
	pyrunc/linux/signals.py \
	pyrunc/linux/spawn.py \
	pyrunc/linux/tables.py \
	pyrunc/linux/terminal.py \
	pyrunc/linux/unix.py \
	pyrunc/log.py \
	pyrunc/notify.py \
	pyrunc/options.py \
	pyrunc/run.py \
	pyrunc/status.py \
	pyrunc/store.py \
	pyrunc/trace.py \
	pyrunc/trace_show.py \
	pyrunc/version.py
lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check --force-exclude $(FORMATTED)
	.venv/bin/mypy
	.venv/bin/python -m pytest -q -p no:cacheprovider tests/unit/test_annotations.py

test: setup lint
	.venv/bin/python -m pytest -q -p no:cacheprovider $(PYTEST_ARGS) tests
	sh scripts/conformance-check.sh
	sh scripts/cgroup2-vm.sh

# tests/cgroup as root in a qemu guest with pure cgroup v2 (docs/testing.md); sets up
# qemu and Debian's kernel on first use, skips with a reason where it cannot run.
test-cgroup2: setup
	sh scripts/cgroup2-vm.sh

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
BENCH_ARGS ?=
bench: setup
	command -v strace >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace >/dev/null; }
	.venv/bin/python bench/run.py --pyrunc $(BENCH_PYRUNC) $(BENCH_ARGS)

# The command, its man pages and bash completion (both generated from the command table).
install: setup
	install -d $(PREFIX)/bin $(PREFIX)/share/man/man8 $(PREFIX)/share/bash-completion/completions
	ln -sf $(CURDIR)/.venv/bin/pyrunc $(PREFIX)/bin/pyrunc
	.venv/bin/python -m pyrunc.cli.manpages $(PREFIX)/share/man/man8
	.venv/bin/python -m pyrunc.cli.completion $(PREFIX)/share/bash-completion/completions/pyrunc

clean:
	rm -rf demo .venv build *.egg-info .cache

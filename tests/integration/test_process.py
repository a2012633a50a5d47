"""The container process's attributes, read back from inside a real busybox container
(or, where busybox cannot tell, from the host): args, env, cwd, user, umask,
capabilities, rlimits, no_new_privs, oom score, personality, scheduler, I/O priority,
LSM labels, session keyring and inherited file descriptors."""

import ctypes
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile

import pytest

from pyrunc.linux.process import lsm_enabled
from tests.conftest import userns_copy
from tests.integration.cli_util import runc
from tests.integration.process_util import as_user, run_args, secret_cwd, stat_field

__all__ = ["runc"]  # the fixture, imported for the tests below

CAP = {"CAP_CHOWN": 0, "CAP_KILL": 5, "CAP_NET_BIND_SERVICE": 10, "CAP_SYS_RESOURCE": 24, "CAP_AUDIT_WRITE": 29}
RUNC_DEFAULT_CAPS = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]


def run_sh(pyrunc, bundle, test_id, script, *flags):
    return run_args(pyrunc, bundle, test_id, ["sh", "-c", script], *flags)


def run_failing(pyrunc, bundle, test_id, script="true"):
    bundle.config["process"]["args"] = ["sh", "-c", script]
    bundle.write()
    r = pyrunc("run", "--bundle", bundle.path, test_id)
    assert r.code != 0, r
    return r


def status_fields(out):
    """{'CapEff': '...', 'Uid': '0 0 0 0', ...} from /proc/self/status text."""
    fields = {}
    for line in out.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields[key] = " ".join(value.split())
    return fields


def host_bounding_has(cap):
    with open("/proc/self/status") as f:
        bnd = int(status_fields(f.read())["CapBnd"], 16)
    return bool(bnd & (1 << cap))


def mask(*names):
    bits = 0
    for n in names:
        bits |= 1 << CAP[n]
    return f"{bits:016x}"


# --- args, env, cwd ----------------------------------------------------------------------


def test_args_reach_the_program_verbatim(pyrunc, bundle, test_id):
    out = run_args(
        pyrunc,
        bundle,
        test_id,
        [
            "/bin/sh",
            "-c",
            'echo "$0"; for a in "$@"; do echo "[$a]"; done',
            "name-zero",
            "a b",
            "",
            "*",
            "$HOME",
            "x\ty",
        ],
    )
    assert out.splitlines() == ["name-zero", "[a b]", "[]", "[*]", "[$HOME]", "[x\ty]"]


def test_args0_is_found_through_the_configs_path(pyrunc, bundle, test_id):
    os.makedirs(os.path.join(bundle.rootfs, "opt", "tools"))
    os.symlink("/bin/busybox", os.path.join(bundle.rootfs, "opt", "tools", "whoami"))
    bundle.config["process"]["env"] = ["PATH=/opt/tools"]
    assert run_args(pyrunc, bundle, test_id, ["whoami"]).strip() == "root"


def test_environment_is_exactly_the_configs(pyrunc, bundle, test_id):
    env = [
        "PATH=/usr/bin:/bin",
        "FOO=bar baz",
        "EMPTY=",
        "WITH_EQUALS=a=b",
        "TERM=xterm",
        "LANG=C.UTF-8",
        "HOME=/nowhere",
    ]
    bundle.config["process"]["env"] = env
    assert run_args(pyrunc, bundle, test_id, ["env"]).splitlines() == env


def test_home_is_added_from_the_containers_passwd_like_runc(pyrunc, bundle, test_id):
    with open(os.path.join(bundle.rootfs, "etc", "passwd"), "a") as f:
        f.write("worker:x:1000:1000:w:/home/worker:/bin/sh\n")
    as_user(bundle, 1000, 1000)
    bundle.config["process"]["env"] = ["PATH=/bin"]
    assert run_args(pyrunc, bundle, test_id, ["env"]).splitlines() == ["PATH=/bin", "HOME=/home/worker"]


def test_home_is_slash_for_a_user_without_an_entry(pyrunc, bundle, test_id):
    as_user(bundle, 4321, 4321)
    bundle.config["process"]["env"] = ["PATH=/bin"]
    assert run_args(pyrunc, bundle, test_id, ["env"]).splitlines() == ["PATH=/bin", "HOME=/"]


def test_a_fifo_for_etc_passwd_does_not_hang_create(pyrunc, bundle, test_id):
    passwd = os.path.join(bundle.rootfs, "etc", "passwd")
    os.unlink(passwd)
    os.mkfifo(passwd)
    bundle.config["process"]["env"] = ["PATH=/bin"]
    assert run_args(pyrunc, bundle, test_id, ["env"]).splitlines() == ["PATH=/bin", "HOME=/"]


def test_cwd(pyrunc, bundle, test_id):
    bundle.config["process"]["cwd"] = "/etc"
    assert run_sh(pyrunc, bundle, test_id, "pwd; ls passwd").split() == ["/etc", "passwd"]


def test_a_missing_cwd_is_created_like_runc_does(pyrunc, bundle, test_id):
    bundle.config["process"]["cwd"] = "/srv/pyrunc/work"
    assert run_sh(pyrunc, bundle, test_id, "pwd").strip() == "/srv/pyrunc/work"
    assert os.path.isdir(os.path.join(bundle.rootfs, "srv", "pyrunc", "work"))


def test_a_cwd_the_user_cannot_search_is_entered_as_root_like_runc(pyrunc, runc, bundle, test_id):
    """runc enters the cwd before it switches to the user: the process starts in it, and
    only finds it unreadable."""
    secret_cwd(bundle)
    bundle.config["process"]["args"] = ["sh", "-c", "pwd; id -u; ls || echo unreadable"]
    runc.use(bundle)
    code, out, err = runc("run", "--bundle", bundle.path, test_id)
    assert (code, out) == (0, "/secret\n1000\nunreadable\n"), err
    r = pyrunc("run", "--bundle", bundle.path, test_id)
    assert (r.code, r.out) == (code, out), r


@pytest.mark.parametrize("fchdir", ["allowed", "denied by seccomp"])
def test_a_cwd_root_is_refused_and_the_user_is_not_is_entered_as_the_user(pyrunc, runc, bundle, test_id, fchdir):
    """In a user namespace, root cannot override the permissions of a directory whose
    group the namespace does not map; its owner, the process's user, can enter it: runc
    tries again after the switch to the user, and so do we.  That second try comes after
    a filter loaded without no_new_privs, which may deny fchdir: then by name."""
    host_id = 100000
    parent = tempfile.mkdtemp(prefix="pyrunc-test-cwd-")
    try:
        b = userns_copy(bundle, parent, host_id)
        b.config["linux"]["namespaces"].append({"type": "user"})
        b.config["process"]["user"] = {"uid": 1000, "gid": 1000}
        b.config["process"]["cwd"] = "/mine"
        b.config["process"]["args"] = ["sh", "-c", "pwd; id -u; ls"]
        if fchdir != "allowed":
            b.config["process"]["noNewPrivileges"] = False
            b.config["linux"]["seccomp"] = {
                "defaultAction": "SCMP_ACT_ALLOW",
                "syscalls": [{"names": ["fchdir"], "action": "SCMP_ACT_ERRNO"}],
            }
        mine = os.path.join(b.rootfs, "mine")
        os.mkdir(mine, 0o700)
        open(os.path.join(mine, "file"), "w").close()
        os.chown(mine, host_id + 1000, 0)  # host gid 0: outside the mapping
        runc.use(b)
        code, out, err = runc("run", "--bundle", b.path, test_id)
        assert (code, out) == (0, "/mine\n1000\nfile\n"), err
        r = pyrunc("run", "--bundle", b.path, test_id)
        assert (r.code, r.out) == (code, out), r
    finally:
        shutil.rmtree(parent, ignore_errors=True)


# --- user, groups, umask -----------------------------------------------------------------


def test_user_uid_gid_and_additional_gids(pyrunc, bundle, test_id):
    as_user(bundle, 1000, 1001, additionalGids=[5, 6, 1001])
    out = run_sh(pyrunc, bundle, test_id, "id; grep -E '^(Uid|Gid|Groups):' /proc/self/status")
    lines = out.splitlines()
    assert lines[0] == "uid=1000 gid=1001 groups=5,6,1001"
    st = status_fields("\n".join(lines[1:]))
    assert st["Uid"] == "1000 1000 1000 1000"
    assert st["Gid"] == "1001 1001 1001 1001"
    assert st["Groups"] == "5 6 1001"


def test_root_gets_no_supplementary_groups_of_the_caller(pyrunc, bundle, test_id):
    out = run_sh(pyrunc, bundle, test_id, "grep -E '^(Uid|Gid|Groups):' /proc/self/status")
    st = status_fields(out)
    assert (st["Uid"], st["Gid"], st["Groups"]) == ("0 0 0 0", "0 0 0 0", "")


def test_umask(pyrunc, bundle, test_id):
    bundle.config["process"]["user"] = {"uid": 0, "gid": 0, "umask": 0o027}
    out = run_sh(pyrunc, bundle, test_id, "umask; cd /tmp && touch f && mkdir d && stat -c %a f d")
    assert out.split() == ["0027", "640", "750"]


def test_umask_defaults_to_0022_whatever_the_callers(pyrunc, bundle, test_id):
    old = os.umask(0o077)
    try:
        out = run_sh(pyrunc, bundle, test_id, "umask")
    finally:
        os.umask(old)
    assert out.strip() == "0022"


# --- capabilities ------------------------------------------------------------------------


def test_runc_default_capabilities_as_root(pyrunc, bundle, test_id):
    out = run_sh(pyrunc, bundle, test_id, "grep ^Cap /proc/self/status")
    st = status_fields(out)
    default = mask(*RUNC_DEFAULT_CAPS)
    assert default == "0000000020000420"
    # Root's exec makes permitted and effective the bounding set; inheritable stays empty
    # (not configured) and the default ambient list is dropped for want of inheritable.
    assert st == {"CapInh": "0" * 16, "CapPrm": default, "CapEff": default, "CapBnd": default, "CapAmb": "0" * 16}


def test_all_five_capability_sets_of_a_non_root_user(pyrunc, bundle, test_id):
    as_user(bundle, 1000, 1000)
    bundle.config["process"]["capabilities"] = {
        "bounding": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"],
        "permitted": ["CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE"],
        "effective": ["CAP_CHOWN", "CAP_KILL"],
        "inheritable": ["CAP_CHOWN", "CAP_KILL"],
        # CAP_NET_BIND_SERVICE is not inheritable, so it cannot be ambient.
        "ambient": ["CAP_KILL", "CAP_NET_BIND_SERVICE"],
    }
    out = run_sh(pyrunc, bundle, test_id, "grep ^Cap /proc/self/status")
    # A non-root exec of a file without file capabilities: permitted = effective = ambient.
    assert status_fields(out) == {
        "CapInh": mask("CAP_CHOWN", "CAP_KILL"),
        "CapPrm": mask("CAP_KILL"),
        "CapEff": mask("CAP_KILL"),
        "CapBnd": mask("CAP_CHOWN", "CAP_KILL", "CAP_NET_BIND_SERVICE", "CAP_AUDIT_WRITE"),
        "CapAmb": mask("CAP_KILL"),
    }


def test_a_non_root_user_without_ambient_capabilities_has_none(pyrunc, bundle, test_id):
    as_user(bundle, 1000, 1000)
    bundle.config["process"]["capabilities"].pop("ambient", None)
    out = run_sh(pyrunc, bundle, test_id, "grep ^Cap /proc/self/status")
    st = status_fields(out)
    assert (st["CapInh"], st["CapPrm"], st["CapEff"], st["CapAmb"]) == ("0" * 16,) * 4
    assert st["CapBnd"] == mask(*RUNC_DEFAULT_CAPS)


def test_effective_capabilities_work_and_missing_ones_do_not(pyrunc, bundle, test_id):
    bundle.config["process"]["capabilities"] = {k: ["CAP_KILL"] for k in ("bounding", "permitted", "effective")}
    out = run_sh(pyrunc, bundle, test_id, "touch /tmp/f; chown 1000 /tmp/f && echo chowned || echo refused")
    assert out.strip().splitlines()[-1] == "refused"  # CAP_CHOWN was not given


# --- rlimits -----------------------------------------------------------------------------


def host_hard_nofile():
    import resource

    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def test_rlimits_are_set(pyrunc, bundle, test_id):
    hard = min(host_hard_nofile(), 4096)
    bundle.config["process"]["rlimits"] = [
        {"type": "RLIMIT_NOFILE", "soft": hard // 2, "hard": hard},
        {"type": "RLIMIT_NPROC", "soft": 300, "hard": 400},
        {"type": "RLIMIT_CORE", "soft": 0, "hard": 0},
    ]
    out = run_sh(
        pyrunc, bundle, test_id, "ulimit -n; ulimit -Hn; grep -E '^Max (processes|core file size)' /proc/self/limits"
    )
    lines = out.splitlines()
    assert lines[:2] == [str(hard // 2), str(hard)]
    procs = next(line.split() for line in lines[2:] if line.startswith("Max processes"))
    core = next(line.split() for line in lines[2:] if line.startswith("Max core file size"))
    assert procs[2:4] == ["300", "400"]
    assert core[4:6] == ["0", "0"]


def test_rlimit_above_the_hosts_hard_limit(pyrunc, bundle, test_id):
    if not host_bounding_has(CAP["CAP_SYS_RESOURCE"]):
        pytest.skip(
            "host limit: this VM's bounding set lacks CAP_SYS_RESOURCE, so no process "
            "here may raise a hard rlimit above the current one (EPERM)"
        )
    hard = host_hard_nofile() + 1000
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": hard, "hard": hard}]
    assert run_sh(pyrunc, bundle, test_id, "ulimit -Hn").strip() == str(hard)


def test_an_rlimit_that_cannot_be_raised_fails_create_with_a_clear_error(pyrunc, bundle, test_id):
    if host_bounding_has(CAP["CAP_SYS_RESOURCE"]):
        pytest.skip("this host can raise any rlimit: there is no failure to show")
    hard = host_hard_nofile() + 1000
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "soft": hard, "hard": hard}]
    r = run_failing(pyrunc, bundle, test_id)
    assert r.code == 1
    assert r.err.strip() == (
        f"pyrunc: create {test_id}: setrlimit RLIMIT_NOFILE {hard}:{hard}: operation not permitted"
    )


# --- no_new_privs, oom score, personality, scheduler, I/O priority -----------------------


@pytest.mark.parametrize("nnp", [True, False])
def test_no_new_privileges(pyrunc, bundle, test_id, nnp):
    bundle.config["process"]["noNewPrivileges"] = nnp
    out = run_sh(pyrunc, bundle, test_id, "grep ^NoNewPrivs: /proc/self/status")
    assert status_fields(out)["NoNewPrivs"] == ("1" if nnp else "0")


def test_oom_score_adj(pyrunc, bundle, test_id):
    # Lowering it needs CAP_SYS_RESOURCE, which this host lacks: raise it from ours.
    with open("/proc/self/oom_score_adj") as f:
        ours = int(f.read())
    value = min(ours + 123, 1000)
    bundle.config["process"]["oomScoreAdj"] = value
    assert run_sh(pyrunc, bundle, test_id, "cat /proc/self/oom_score_adj").strip() == str(value)


@pytest.mark.skipif(platform.machine() != "x86_64", reason="LINUX32 reports i686 on x86_64 hosts")
@pytest.mark.parametrize("domain,machine,persona", [("LINUX32", "i686", "00000008"), ("LINUX", "x86_64", "00000000")])
def test_personality(pyrunc, bundle, test_id, domain, machine, persona):
    bundle.config["linux"]["personality"] = {"domain": domain}
    out = run_sh(pyrunc, bundle, test_id, "busybox uname -m; cat /proc/self/personality")
    assert out.split() == [machine, persona]


@pytest.mark.parametrize("policy,number,nice", [("SCHED_BATCH", 3, 7), ("SCHED_IDLE", 5, 0), ("SCHED_OTHER", 0, 4)])
def test_scheduler(pyrunc, bundle, test_id, policy, number, nice):
    bundle.config["process"]["scheduler"] = {"policy": policy, "nice": nice}
    stat = run_sh(pyrunc, bundle, test_id, "cat /proc/self/stat").strip()
    assert stat_field(stat, 41) == str(number)  # policy
    assert stat_field(stat, 19) == str(nice)


def ioprio_get(pid):
    nr = {"x86_64": 252, "aarch64": 31}[platform.machine()]
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    value = libc.syscall(ctypes.c_long(nr), ctypes.c_int(1), ctypes.c_int(pid))  # IOPRIO_WHO_PROCESS
    assert value >= 0, os.strerror(ctypes.get_errno())
    return value >> 13, value & 0x1FFF


@pytest.mark.parametrize("ioclass,number,prio", [("IOPRIO_CLASS_BE", 2, 6), ("IOPRIO_CLASS_IDLE", 3, 0)])
def test_io_priority_seen_from_the_host(pyrunc, bundle, test_id, ioclass, number, prio):
    bundle.config["process"]["ioPriority"] = {"class": ioclass, "priority": prio}
    bundle.config["process"]["args"] = ["sleep", "60"]
    bundle.write()
    r = pyrunc("run", "--detach", "--bundle", bundle.path, test_id)
    assert r.code == 0, r
    try:
        pid = pyrunc.state(test_id)["pid"]
        with open(f"/proc/{pid}/comm") as f:
            assert f.read().strip() == "sleep"
        assert ioprio_get(pid) == (number, prio)
    finally:
        pyrunc("delete", "--force", test_id)


def test_io_priority_seen_from_inside(pyrunc, bundle, test_id):
    bundle.config["process"]["ioPriority"] = {"class": "IOPRIO_CLASS_BE", "priority": 3}
    assert run_sh(pyrunc, bundle, test_id, "busybox ionice -p $$").strip() == "best-effort: prio 3"


# --- LSM labels --------------------------------------------------------------------------


@pytest.mark.skipif(lsm_enabled("apparmor"), reason="AppArmor is enabled here: no error to show")
def test_apparmor_profile_without_apparmor_is_a_clear_error(pyrunc, bundle, test_id):
    bundle.config["process"]["apparmorProfile"] = "pyrunc-test-profile"
    r = run_failing(pyrunc, bundle, test_id)
    assert r.code == 1
    assert r.err.startswith(
        f"pyrunc: create {test_id}: apparmor profile 'pyrunc-test-profile': AppArmor is not enabled on this host"
    )


@pytest.mark.skipif(lsm_enabled("selinux"), reason="SELinux is enabled here: no error to show")
def test_selinux_label_without_selinux_is_a_clear_error(pyrunc, bundle, test_id):
    bundle.config["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0"
    r = run_failing(pyrunc, bundle, test_id)
    assert r.code == 1
    assert r.err.startswith(
        f"pyrunc: create {test_id}: selinux label 'system_u:system_r:container_t:s0': "
        "SELinux is not enabled on this host"
    )


# --- session, keyring, file descriptors --------------------------------------------------


def test_the_init_leads_a_new_session_and_process_group(pyrunc, bundle, test_id):
    stat = run_sh(pyrunc, bundle, test_id, "cat /proc/self/stat").strip()
    assert (stat_field(stat, 5), stat_field(stat, 6)) == ("1", "1")  # pgrp, session


def show_keys(bundle):
    """Unmask /proc/keys (runc's default masks it) and print it from inside."""
    bundle.config["linux"]["maskedPaths"] = [p for p in bundle.config["linux"]["maskedPaths"] if p != "/proc/keys"]
    return "cat /proc/keys"


def keyring_names(out):
    return [line.split()[-2].rstrip(":") for line in out.splitlines() if " keyring " in line]


def test_a_new_session_keyring_named_after_the_container(pyrunc, bundle, test_id):
    out = run_sh(pyrunc, bundle, test_id, show_keys(bundle))
    assert f"_ses.{test_id}" in keyring_names(out)


def test_no_new_keyring_keeps_the_callers_session_keyring(pyrunc, bundle, test_id):
    out = run_sh(pyrunc, bundle, test_id, show_keys(bundle), "--no-new-keyring")
    assert f"_ses.{test_id}" not in keyring_names(out)


def run_with_fds(pyrunc, bundle, test_id, script, files, *flags):
    """Run pyrunc with fds 3, 4, 5... open on `files` (the fixture's runner closes all)."""
    bundle.config["process"]["args"] = ["sh", "-c", script]
    bundle.write()
    n = len(files)
    keep = " ".join(f'f{i}="${i}"' for i in range(1, n + 1))
    redirects = " ".join(f'{i + 2}<"$f{i}"' for i in range(1, n + 1))
    pyrunc_cmd = [
        sys.executable,
        "-m",
        "pyrunc",
        "--root",
        pyrunc.root,
        "--log",
        pyrunc.log,
        "run",
        *flags,
        "--bundle",
        bundle.path,
        test_id,
    ]
    # sh opens the files as fds 3.. in the child only, then execs pyrunc with them.
    wrapper = ["sh", "-c", f'{keep}; shift {n}; exec "$@" {redirects}', "sh", *files, *pyrunc_cmd]
    out_path = os.path.join(pyrunc.tmp, f"{test_id}.out")
    with open(out_path, "w+b") as out:
        code = subprocess.call(wrapper, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, timeout=60)
        out.seek(0)
        text = out.read().decode()
    assert code == 0, text
    return text


def test_no_host_fd_reaches_the_container(pyrunc, bundle, test_id, three_files):
    out = run_with_fds(pyrunc, bundle, test_id, "ls /proc/$$/fd; true", three_files)
    assert out.split() == ["0", "1", "2"]


def test_preserve_fds_passes_exactly_that_many(pyrunc, bundle, test_id, three_files):
    out = run_with_fds(
        pyrunc, bundle, test_id, "ls /proc/$$/fd; cat <&3; cat <&4; true", three_files, "--preserve-fds", "2"
    )
    assert out.split() == ["0", "1", "2", "3", "4", "three", "four"]


# --- runc's own default config -----------------------------------------------------------


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed")
def test_runc_spec_default_config_runs_unchanged(pyrunc, bundle, test_id):
    subprocess.run(["runc", "spec", "--bundle", bundle.path], check=True)
    with open(os.path.join(bundle.path, "config.json")) as f:
        config = json.load(f)
    # No tty here; and every test container lives under a /pyrunc-test-... cgroup.
    config["process"]["terminal"] = False
    config["linux"]["cgroupsPath"] = bundle.config["linux"]["cgroupsPath"]
    with open(os.path.join(bundle.path, "config.json"), "w") as f:
        json.dump(config, f)
    r = pyrunc("run", "--bundle", bundle.path, test_id)  # `sh` reading an empty stdin
    assert r.code == 0, r
    assert r.err == ""

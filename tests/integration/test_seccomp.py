"""linux.seccomp: every action, argument rules with every operator, flags, the notify
listener, the compiled-program cache, and real profiles run in containers."""

import errno
import json
import os
import signal
import socket
import struct
import threading

import pytest

from pyrunc.linux import seccomp
from tests.integration.seccomp_probe import NR, compiled, probe
from tests.integration.seccomp_profiles import docker_like_profile

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

PER_LINUX32 = 0x0008
QUERY = 0xFFFFFFFF  # personality(0xffffffff) only reads the persona


def allow_all_but(action, names=("getppid",), **rule):
    return {"defaultAction": "SCMP_ACT_ALLOW", "syscalls": [dict({"names": list(names), "action": action}, **rule)]}


def denied(result, err=errno.EPERM):
    return result == [-1, err]


# --- actions, observed in a child --------------------------------------------------------


def test_errno_action_with_its_errno():
    results, sig = probe(
        compiled(allow_all_but("SCMP_ACT_ERRNO", errnoRet=errno.EXDEV)), [("getppid", []), ("getpid", [])]
    )
    assert sig == 0 and denied(results[0], errno.EXDEV) and results[1][0] > 0


def test_default_errno_ret():
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO",
        "defaultErrnoRet": errno.ENOTSUP,
        "syscalls": [
            {"names": ["write", "exit_group", "exit", "getpid", "futex", "rt_sigreturn"], "action": "SCMP_ACT_ALLOW"}
        ],
    }
    results, _ = probe(compiled(profile), [("getppid", []), ("getpid", [])])
    assert denied(results[0], errno.ENOTSUP) and results[1][0] > 0


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL"])
def test_kill_actions_end_the_child_with_sigsys(action):
    results, sig = probe(compiled(allow_all_but(action)), [("getpid", []), ("getppid", []), ("getpid", [])])
    assert sig == signal.SIGSYS and len(results) == 1


def test_kill_thread_ends_only_that_thread():
    results, sig = probe(compiled(allow_all_but("SCMP_ACT_KILL_THREAD")), [("getppid", [])], in_thread=True)
    assert sig == 0 and results == [["main thread alive"]]


def test_kill_process_ends_every_thread():
    results, sig = probe(compiled(allow_all_but("SCMP_ACT_KILL_PROCESS")), [("getppid", [])], in_thread=True)
    assert sig == signal.SIGSYS and results == []


def test_trap_raises_sigsys_that_can_be_caught():
    results, sig = probe(compiled(allow_all_but("SCMP_ACT_TRAP")), [("getppid", []), ("getpid", [])], trap_handler=True)
    assert sig == 0 and ["trapped"] in results


def test_trace_without_a_tracer_fails_with_enosys():
    results, _ = probe(compiled(allow_all_but("SCMP_ACT_TRACE", errnoRet=5)), [("getppid", [])])
    assert denied(results[0], errno.ENOSYS)


@pytest.mark.parametrize("action", ["SCMP_ACT_LOG", "SCMP_ACT_ALLOW"])
def test_log_and_allow_let_the_call_through(action):
    profile = {
        "defaultAction": "SCMP_ACT_ERRNO" if action == "SCMP_ACT_ALLOW" else "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["getppid"], "action": action}],
    }
    if action == "SCMP_ACT_ALLOW":
        profile["syscalls"].append(
            {"names": ["write", "exit_group", "exit", "futex", "rt_sigreturn"], "action": "SCMP_ACT_ALLOW"}
        )
    results, _ = probe(compiled(profile), [("getppid", [])])
    assert results[0][0] == os.getpid()


def test_unknown_syscall_names_are_skipped():
    profile = allow_all_but("SCMP_ACT_ERRNO", names=("no_such_syscall_anywhere", "getppid"))
    results, _ = probe(compiled(profile), [("getppid", [])])
    assert denied(results[0])


# --- argument rules ----------------------------------------------------------------------


def personality_rule(*args):
    return allow_all_but("SCMP_ACT_ERRNO", names=("personality",), args=list(args))


@pytest.mark.parametrize(
    "op, value, blocked, passed",
    [
        ("SCMP_CMP_EQ", PER_LINUX32, [PER_LINUX32], [0, QUERY]),
        ("SCMP_CMP_NE", QUERY, [0, PER_LINUX32], [QUERY]),
        ("SCMP_CMP_LT", 8, [0, 7], [8, QUERY]),
        ("SCMP_CMP_LE", 8, [0, 8], [9, QUERY]),
        ("SCMP_CMP_GT", 8, [9, QUERY], [0, 8]),
        ("SCMP_CMP_GE", 8, [8, QUERY], [0, 7]),
    ],
)
def test_every_comparison_operator(op, value, blocked, passed):
    program = compiled(personality_rule({"index": 0, "value": value, "op": op}))
    results, _ = probe(program, [("personality", [v]) for v in blocked + passed])
    assert [denied(r) for r in results] == [True] * len(blocked) + [False] * len(passed)


def test_masked_eq_compares_the_masked_argument():
    # value is the mask, valueTwo what the masked argument must equal (libseccomp's order)
    program = compiled(personality_rule({"index": 0, "value": 0x00FF, "valueTwo": 0x0008, "op": "SCMP_CMP_MASKED_EQ"}))
    results, _ = probe(program, [("personality", [v]) for v in (0x0008, 0x1008, 0x0009, 0)])
    assert [denied(r) for r in results] == [True, True, False, False]


def test_the_same_argument_twice_means_either_value():
    program = compiled(
        personality_rule({"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}, {"index": 0, "value": 2, "op": "SCMP_CMP_EQ"})
    )
    results, _ = probe(program, [("personality", [v]) for v in (1, 2, 3)])
    assert [denied(r) for r in results] == [True, True, False]


def test_different_arguments_must_all_match():
    profile = allow_all_but(
        "SCMP_ACT_ERRNO",
        names=("mkdirat",),
        args=[
            {"index": 0, "value": 2**64 - 100, "op": "SCMP_CMP_EQ"},  # AT_FDCWD
            {"index": 2, "value": 0o700, "op": "SCMP_CMP_EQ"},
        ],
    )
    import ctypes

    path = ctypes.create_string_buffer(b"/nonexistent-pyrunc-test/x")  # kept alive across the fork
    p = ctypes.addressof(path)
    results, _ = probe(compiled(profile), [("mkdirat", [2**64 - 100, p, 0o700]), ("mkdirat", [2**64 - 100, p, 0o755])])
    assert denied(results[0]) and results[1] == [-1, errno.ENOENT]


def test_several_rules_for_one_syscall():
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {
                "names": ["personality"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": 1,
                "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_EQ"}],
            },
            {
                "names": ["personality"],
                "action": "SCMP_ACT_ERRNO",
                "errnoRet": 2,
                "args": [{"index": 0, "value": 2, "op": "SCMP_CMP_EQ"}],
            },
        ],
    }
    results, _ = probe(compiled(profile), [("personality", [v]) for v in (1, 2, 0)])
    assert results[0] == [-1, 1] and results[1] == [-1, 2] and results[2][0] >= 0


@pytest.mark.parametrize(
    "flag", ["SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW"]
)
def test_flags_are_passed_to_the_kernel(flag):
    profile = dict(allow_all_but("SCMP_ACT_ERRNO"), flags=[flag])
    results, sig = probe(compiled(profile), [("getppid", [])], flags=seccomp.load_flags(profile))
    assert sig == 0 and denied(results[0])


# --- the cache ---------------------------------------------------------------------------


def test_a_cached_program_and_a_fresh_one_block_and_allow_the_same(tmp_path):
    profile = personality_rule({"index": 0, "value": 8, "op": "SCMP_CMP_GE"})
    calls = [("personality", [v]) for v in (0, 7, 8, QUERY)] + [("getppid", [])]
    fresh = compiled(profile)
    first = seccomp.program_for(profile, str(tmp_path))  # compiles and stores
    cached = seccomp.program_for(profile, str(tmp_path))  # read back
    assert first == cached == fresh
    assert probe(cached, calls)[0] == probe(fresh, calls)[0]


def test_a_tampered_cache_entry_is_compiled_afresh(tmp_path):
    profile = allow_all_but("SCMP_ACT_ERRNO")
    seccomp.program_for(profile, str(tmp_path))
    entry = tmp_path / seccomp.CACHE_DIR / (seccomp.profile_key(profile) + ".bpf")
    data = bytearray(entry.read_bytes())
    data[-1] ^= 0xFF  # a flipped bit in the program no longer matches the checksum
    entry.write_bytes(bytes(data))
    assert seccomp.program_for(profile, str(tmp_path)) == compiled(profile)


def test_a_cache_entry_others_may_write_is_not_trusted(tmp_path):
    profile = allow_all_but("SCMP_ACT_ERRNO")
    seccomp.program_for(profile, str(tmp_path))
    entry = tmp_path / seccomp.CACHE_DIR / (seccomp.profile_key(profile) + ".bpf")
    os.chmod(entry, 0o666)
    assert seccomp._read_cached(str(entry)) is None


# --- containers --------------------------------------------------------------------------


def run_with(pyrunc, bundle, test_id, profile, script, **process):
    bundle.config["linux"]["seccomp"] = profile
    bundle.config["process"].update(process)
    bundle.config["process"]["args"] = ["sh", "-c", script]
    bundle.write()
    return pyrunc("run", "--bundle", bundle.path, test_id)


@pytest.mark.parametrize("nnp", [True, False])
def test_a_deny_one_syscall_profile_in_a_container(pyrunc, bundle, test_id, nnp):
    profile = allow_all_but("SCMP_ACT_ERRNO", names=("mkdir", "mkdirat"), errnoRet=errno.EACCES)
    r = run_with(
        pyrunc,
        bundle,
        test_id,
        profile,
        "mkdir /tmp/d || echo refused; touch /tmp/f && echo touched",
        noNewPrivileges=nnp,
    )
    assert r.code == 0 and r.out.split() == ["refused", "touched"] and "Permission denied" in r.err, r


def test_the_filter_binds_a_non_root_user_without_no_new_privileges(pyrunc, bundle, test_id):
    os.chmod(bundle.rootfs, 0o755)
    profile = allow_all_but("SCMP_ACT_ERRNO", names=("mkdir", "mkdirat"))
    r = run_with(
        pyrunc,
        bundle,
        test_id,
        profile,
        "id -u; mkdir /tmp/d || echo refused",
        noNewPrivileges=False,
        user={"uid": 1000, "gid": 1000},
    )
    assert r.out.split() == ["1000", "refused"], r


def test_personality_allowed_for_one_value_only(pyrunc, bundle, test_id):
    os.symlink("busybox", os.path.join(bundle.rootfs, "bin", "linux32"))
    os.symlink("busybox", os.path.join(bundle.rootfs, "bin", "linux64"))
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {
                "names": ["personality"],
                "action": "SCMP_ACT_ERRNO",
                "args": [{"index": 0, "value": 0, "op": "SCMP_CMP_NE"}],
            }
        ],
    }
    r = run_with(
        pyrunc, bundle, test_id, profile, "linux64 true && echo linux64-ok; linux32 true || echo linux32-refused"
    )
    assert r.out.split() == ["linux64-ok", "linux32-refused"], r


@pytest.mark.parametrize("action", ["SCMP_ACT_KILL_PROCESS", "SCMP_ACT_TRAP"])
def test_kill_and_trap_seen_from_the_host_as_sigsys(pyrunc, bundle, test_id, action):
    bundle.config["linux"]["seccomp"] = allow_all_but(action, names=("mkdir", "mkdirat"))
    bundle.config["process"]["args"] = ["mkdir", "/tmp/d"]
    bundle.write()
    r = pyrunc("run", "--bundle", bundle.path, test_id)
    assert r.code == 128 + signal.SIGSYS, r


def test_a_docker_like_profile_runs_a_container_and_refuses_mount(pyrunc, bundle, test_id):
    profile = docker_like_profile()
    assert len(profile["syscalls"][0]["names"]) > 300
    caps = bundle.config["process"]["capabilities"]
    for s in ("bounding", "effective", "permitted"):
        caps[s].append("CAP_SYS_ADMIN")  # the capability allows it; only seccomp refuses
    r = run_with(
        pyrunc,
        bundle,
        test_id,
        profile,
        "echo hello; ls / > /dev/null && echo listed; mount -t tmpfs none /tmp || echo no-mount",
    )
    assert r.code == 0 and r.out.split() == ["hello", "listed", "no-mount"], r


# --- SCMP_ACT_NOTIFY ---------------------------------------------------------------------

SECCOMP_IOCTL_NOTIF_RECV = 0xC0502100
SECCOMP_IOCTL_NOTIF_SEND = 0xC0182101
NOTIF = struct.Struct("=QII iIQ6Q")  # seccomp_notif: id, pid, flags, then seccomp_data
NOTIF_RESP = struct.Struct("=QqiI")  # seccomp_notif_resp: id, val, error, flags


class Listener:
    """A seccomp agent: takes the state and the notify fd, answers every notified call."""

    def __init__(self, path, answer_errno):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(1)
        self.answer_errno = answer_errno
        self.state = None
        self.syscalls = []
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        import fcntl

        conn, _ = self.sock.accept()
        data, fds, _, _ = socket.recv_fds(conn, 65536, 1)
        conn.close()
        self.state = json.loads(data)
        fd = fds[0]
        try:
            while True:
                buf = bytearray(NOTIF.size)
                try:
                    fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_RECV, buf)
                except OSError:
                    return  # the container is gone
                nid, _pid, _flags, nr, *_ = NOTIF.unpack(buf)
                self.syscalls.append(nr)
                resp = bytearray(NOTIF_RESP.pack(nid, 0, -self.answer_errno, 0))
                try:
                    fcntl.ioctl(fd, SECCOMP_IOCTL_NOTIF_SEND, resp)
                except OSError:
                    pass
        finally:
            os.close(fd)


def test_notify_sends_the_state_and_fd_to_the_listener_which_answers(pyrunc, bundle, test_id, tmp_path):
    path = str(tmp_path / "agent.sock")
    agent = Listener(path, errno.EXDEV)
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": path,
        "listenerMetadata": "from the test",
        "flags": ["SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"] if _kernel_at_least(5, 19) else [],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_NOTIFY"}],
    }
    r = run_with(pyrunc, bundle, test_id, profile, "mkdir /tmp/d || echo answered; test -d /tmp/d || echo not-made")
    assert r.code == 0 and r.out.split() == ["answered", "not-made"] and "Invalid cross-device link" in r.err, r
    st = agent.state
    assert st["fds"] == ["seccompFd"] and st["metadata"] == "from the test" and st["pid"] > 0
    assert st["state"]["id"] == test_id and st["state"]["status"] == "creating"
    assert st["state"]["bundle"] == bundle.path
    assert NR["mkdirat"] in agent.syscalls or agent.syscalls


def test_an_unreachable_listener_fails_create_and_leaves_nothing(pyrunc, bundle, test_id, tmp_path):
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "listenerPath": str(tmp_path / "nobody.sock"),
        "syscalls": [{"names": ["mkdir"], "action": "SCMP_ACT_NOTIFY"}],
    }
    r = run_with(pyrunc, bundle, test_id, profile, "true")
    assert r.code == 1 and "listenerPath" in r.err and "no such file" in r.err, r
    assert not os.path.exists(os.path.join(pyrunc.root, test_id))


def _kernel_at_least(major, minor):
    v = tuple(int(x) for x in os.uname().release.split("-")[0].split(".")[:2])
    return v >= (major, minor)


def test_a_cached_profile_is_loaded_without_importing_libseccomp(pyrunc, bundle, test_id):
    from tests.unit.import_probe import modules_imported_by

    bundle.config["linux"]["seccomp"] = allow_all_but("SCMP_ACT_ERRNO", names=("mkdir", "mkdirat"))
    bundle.config["process"]["args"] = ["true"]
    bundle.write()
    assert pyrunc("run", "--bundle", bundle.path, test_id).code == 0  # compiles and caches
    loaded = modules_imported_by("--root", pyrunc.root, "run", "--bundle", bundle.path, test_id + "-2")
    assert "pyrunc.linux.seccomp" in loaded and not {"pyseccomp", "seccomp"} & loaded


@pytest.mark.parametrize("nnp", [False, True])
def test_a_profile_that_denies_the_runtimes_own_syscalls(pyrunc, bundle, test_id, nnp):
    """The runtime-tools suite's profile shape: an allow list older than openat2 and
    close_range.  Without no_new_privs the filter goes in before the switch to the user,
    so the cwd and program checks (openat2) and the fd sweep (close_range) run before it;
    the process still gets the cwd it asked for."""
    profile = allow_all_but("SCMP_ACT_ERRNO", names=("openat2", "close_range"))
    os.makedirs(os.path.join(bundle.rootfs, "work"))
    r = run_with(pyrunc, bundle, test_id, profile, "pwd; ls /proc/self/fd | wc -l", noNewPrivileges=nnp, cwd="/work")
    assert r.code == 0 and r.out.split() == ["/work", "4"], r  # 0 1 2 and ls's own

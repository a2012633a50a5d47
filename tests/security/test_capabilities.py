"""CVE-2022-29162 and privilege gain at exec: the capabilities a container process can
reach are those of the config and no more, even through a program of the image that
carries file capabilities or the setuid bit.

- runc used to fill the inheritable set from the bounding set when the config gave none:
  a program with inheritable file capabilities then gained them at exec, even for a
  non-root user.  pyrunc sets every set to exactly the config's (capabilities.apply).
- The bounding set limits what file capabilities and setuid-root give
  (capabilities.drop_bounding, while the init still holds CAP_SETPCAP).
- no_new_privs makes exec ignore the setuid bit and file capabilities
  (process.set_no_new_privileges, before the switch to the user).

Each program of the image runs as uid 1000 and reports what it got.
"""

import os
import shutil
import struct

import pytest

from tests.security.sec_util import cap_sets, run_ok

RUNC_DEFAULT = ["CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"]
RUNC_DEFAULT_MASK = (1 << 29) | (1 << 5) | (1 << 10)
USER = {"uid": 1000, "gid": 1000}


def _all_caps():
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return (1 << (int(f.read()) + 1)) - 1


def _privileged_busybox(bundle, name):
    """A copy of busybox in the image at /<name>/busybox (its applets keep working when
    called as `busybox APPLET`)."""
    d = os.path.join(bundle.rootfs, name)
    os.mkdir(d)
    path = os.path.join(d, "busybox")
    shutil.copy2(os.path.join(bundle.rootfs, "bin", "busybox"), path)
    return path


def _set_file_caps(path, permitted=0, inheritable=0, effective=True):
    """security.capability, revision 2: what setcap writes (`+eip` with effective).
    Without the effective bit the kernel does not refuse a program whose file permitted
    set the bounding set cuts short (a capability-dumb program would fail confusingly)."""
    value = struct.pack(
        "<IIIII",
        0x02000000 | int(effective),
        permitted & 0xFFFFFFFF,
        inheritable & 0xFFFFFFFF,
        permitted >> 32,
        inheritable >> 32,
    )
    os.setxattr(path, "security.capability", value)


def test_the_five_sets_are_exactly_the_configs(pyrunc, bundle, test_id):
    """runc's default config as root: nothing inheritable, nothing ambient."""
    out = run_ok(pyrunc, bundle, test_id, "grep ^Cap /proc/self/status")
    assert cap_sets(out) == {
        "CapInh": 0,
        "CapPrm": RUNC_DEFAULT_MASK,
        "CapEff": RUNC_DEFAULT_MASK,
        "CapBnd": RUNC_DEFAULT_MASK,
        "CapAmb": 0,
    }


def test_inheritable_file_capabilities_give_a_user_nothing(pyrunc, bundle, test_id):
    """CVE-2022-29162: a program with every capability inheritable in its file caps, run
    by a user whose config grants a bounding set and nothing else, gains nothing."""
    prog = _privileged_busybox(bundle, "inh")
    _set_file_caps(prog, inheritable=_all_caps())
    bundle.config["process"]["user"] = USER
    bundle.config["process"]["capabilities"] = {"bounding": RUNC_DEFAULT}
    bundle.config["process"]["noNewPrivileges"] = False
    out = run_ok(pyrunc, bundle, test_id, "/inh/busybox grep ^Cap /proc/self/status")
    assert cap_sets(out) == {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": RUNC_DEFAULT_MASK, "CapAmb": 0}


def test_file_capabilities_stop_at_the_bounding_set(pyrunc, bundle, test_id):
    """A program whose file caps permit everything gets no more than the bounding set."""
    out = _run_with_file_caps(pyrunc, bundle, test_id, no_new_privileges=False)
    caps = cap_sets(out)
    assert caps["CapPrm"] == caps["CapBnd"] == RUNC_DEFAULT_MASK, out


def _run_with_file_caps(pyrunc, bundle, test_id, no_new_privileges):
    """The status Cap lines of a non-root user's program whose file caps permit everything."""
    prog = _privileged_busybox(bundle, "prm")
    _set_file_caps(prog, permitted=_all_caps(), effective=False)
    bundle.config["process"]["user"] = USER
    bundle.config["process"]["capabilities"] = {"bounding": RUNC_DEFAULT}
    bundle.config["process"]["noNewPrivileges"] = no_new_privileges
    return run_ok(pyrunc, bundle, test_id, "/prm/busybox grep ^Cap /proc/self/status")


def _setuid_root_id(bundle):
    """A setuid-root busybox whose `id` keeps the privilege: busybox drops it unless
    /etc/busybox.conf (root's, not writable by others) says otherwise."""
    prog = _privileged_busybox(bundle, "suid")
    os.chmod(prog, 0o4755)
    conf = os.path.join(bundle.rootfs, "etc", "busybox.conf")
    with open(conf, "w") as f:
        f.write("[SUID]\nid = sxx 0.0\n")
    os.chmod(conf, 0o600)


@pytest.mark.parametrize("nnp, euid", [(True, "1000"), (False, "0")], ids=["nnp", "no-nnp"])
def test_no_new_privileges_stops_a_setuid_root_program(pyrunc, bundle, test_id, nnp, euid):
    """With noNewPrivileges the setuid bit gives nothing; without it, the same program does
    become root (the control that shows the program is a real setuid-root one)."""
    _setuid_root_id(bundle)
    bundle.config["process"]["user"] = USER
    bundle.config["process"]["noNewPrivileges"] = nnp
    assert run_ok(pyrunc, bundle, test_id, "/suid/busybox id -u") == euid + "\n"


def test_no_new_privileges_stops_file_capabilities(pyrunc, bundle, test_id):
    """The program of the test above, with noNewPrivileges: nothing."""
    out = _run_with_file_caps(pyrunc, bundle, test_id, no_new_privileges=True)
    assert cap_sets(out)["CapEff"] == cap_sets(out)["CapPrm"] == 0, out

"""The compiled-program cache under the state root: bounded (entries and bytes, the least
recently used go first) and keyed by the libseccomp that compiled each program."""

import os
import time

import pytest

from pyrunc.linux import seccomp

pytest.importorskip("pyseccomp")


def profile(errno_ret):
    """Distinct profiles, one per errno."""
    return {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["umask"], "action": "SCMP_ACT_ERRNO", "errnoRet": errno_ret}],
    }


def entry(tmp_path, prof, version=None):
    return tmp_path / seccomp.CACHE_DIR / (seccomp.profile_key(prof, version) + seccomp.CACHE_SUFFIX)


def entries(tmp_path):
    return sorted(p.name for p in (tmp_path / seccomp.CACHE_DIR).iterdir())


def age(path, seconds):
    """File times have a clock tick's resolution: order the entries' last uses by hand."""
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_the_least_recently_used_entry_goes_past_the_count(tmp_path, monkeypatch):
    monkeypatch.setattr(seccomp, "CACHE_MAX_ENTRIES", 3)
    a, b, c, d = (profile(n) for n in (1, 2, 3, 4))
    for i, p in enumerate((a, b, c)):
        seccomp.program_for(p, str(tmp_path))
        age(entry(tmp_path, p), 300 - 100 * i)  # a oldest, then b, then c
    assert seccomp.program_for(a, str(tmp_path)) == seccomp.compile_profile(a)  # a hit: a is the newest
    seccomp.program_for(d, str(tmp_path))
    assert entries(tmp_path) == sorted(entry(tmp_path, p).name for p in (a, c, d))


def test_the_least_recently_used_entries_go_past_the_bytes(tmp_path, monkeypatch):
    a, b, c = (profile(n) for n in (1, 2, 3))
    seccomp.program_for(a, str(tmp_path))
    size = entry(tmp_path, a).stat().st_size
    monkeypatch.setattr(seccomp, "CACHE_MAX_BYTES", 2 * size)  # the same size each: two fit
    for i, p in enumerate((a, b)):
        seccomp.program_for(p, str(tmp_path))
        age(entry(tmp_path, p), 200 - 100 * i)
    seccomp.program_for(c, str(tmp_path))
    assert entries(tmp_path) == sorted(entry(tmp_path, p).name for p in (b, c))


def test_the_entry_just_written_stays_even_alone_past_the_bound(tmp_path, monkeypatch):
    monkeypatch.setattr(seccomp, "CACHE_MAX_BYTES", 1)
    seccomp.program_for(profile(1), str(tmp_path))
    seccomp.program_for(profile(2), str(tmp_path))
    assert entries(tmp_path) == [entry(tmp_path, profile(2)).name]


def test_a_writers_stale_temporary_file_goes_a_fresh_one_stays(tmp_path):
    directory = tmp_path / seccomp.CACHE_DIR
    directory.mkdir(mode=0o700)
    stale, fresh = directory / "x.bpf.1.tmp", directory / "y.bpf.2.tmp"
    stale.write_bytes(b"")
    fresh.write_bytes(b"")
    age(stale, 7200)
    seccomp.program_for(profile(1), str(tmp_path))
    assert not stale.exists() and fresh.exists()


def test_a_program_of_another_libseccomp_is_not_loaded(tmp_path, monkeypatch):
    """An entry under the key another libseccomp release gives the profile (a valid entry,
    holding another program so that a hit would show) is never read; under that release
    it is."""
    prof, other = profile(1), profile(2)
    assert seccomp.library_version()
    assert seccomp.profile_key(prof, "0.0.1") != seccomp.profile_key(prof)
    seccomp.program_for(other, str(tmp_path))
    os.rename(entry(tmp_path, other), entry(tmp_path, prof, "0.0.1"))
    assert seccomp.program_for(prof, str(tmp_path)) == seccomp.compile_profile(prof)
    monkeypatch.setattr(seccomp, "_library_version", "0.0.1")  # as if that release were loaded
    assert seccomp.program_for(prof, str(tmp_path)) == seccomp.compile_profile(other)


def test_the_version_in_the_key_is_the_loaded_librarys():
    """What pyseccomp, which compiles the programs, reports of the library it loaded."""
    import ctypes

    import pyseccomp

    version = pyseccomp._libseccomp.seccomp_version
    version.restype = ctypes.POINTER(ctypes.c_uint * 3)
    major, minor, micro = version().contents
    assert seccomp.library_version() == f"{major}.{minor}.{micro}"

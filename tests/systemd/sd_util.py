"""What the systemd guest's tests share: commands that must succeed, and systemd's view
of a unit through systemctl."""

import subprocess

CGROUP_ROOT = "/sys/fs/cgroup"


def run(*argv):
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{' '.join(argv)}: exit {proc.returncode}: {proc.stderr.strip()}"
    return proc.stdout


def show(unit, *names):
    """{property: value} of a unit as `systemctl show` prints them; a property shown on
    several lines (DeviceAllow) has its values sorted and joined by "; "."""
    out = run("systemctl", "show", "--property=" + ",".join(names), unit)
    found = {}
    for line in out.splitlines():
        if "=" in line:
            name, value = line.split("=", 1)
            found.setdefault(name, []).append(value)
    return {name: "; ".join(sorted(values)) for name, values in found.items()}


def gone(unit):
    """systemd has no such unit, loaded or listed."""
    listed = run("systemctl", "list-units", "--all", "--plain", "--no-legend", unit)
    return show(unit, "LoadState")["LoadState"] == "not-found" and unit not in listed


def read(path):
    with open(path) as f:
        return f.read().strip()

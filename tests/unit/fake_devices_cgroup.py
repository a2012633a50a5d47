"""A model of one cgroup v1 devices controller, for unit tests of the code that writes
devices.allow / devices.deny and reads devices.list (what the kernel does with each line,
as Documentation/admin-guide/cgroup-v1/devices.rst and the kernel's device_cgroup.c say)."""

BITS = {"r": 2, "w": 4, "m": 1}


class DevicesCgroup:
    """What the kernel keeps for one v1 devices cgroup: a default and exceptions to it,
    changed by lines written to devices.allow / devices.deny, listed as devices.list."""

    def __init__(self):
        self.allow_all, self.exceptions = True, {}  # a new cgroup under the root

    def write(self, allow, line):
        kind, numbers, access = line.split()
        if kind == "a":
            self.allow_all, self.exceptions = allow, {}
            return
        major, minor = (None if n == "*" else int(n) for n in numbers.split(":"))
        key, bits = (kind, major, minor), sum(BITS[c] for c in access)
        if allow != self.allow_all:
            self.exceptions[key] = self.exceptions.get(key, 0) | bits
        else:  # the same verdict as the default: narrows the exact exception only
            left = self.exceptions.pop(key, 0) & ~bits
            if left:
                self.exceptions[key] = left

    def allows(self, kind, major, minor, bits):
        def hit(key):
            k, ma, mi = key
            return k == kind and ma in (None, major) and mi in (None, minor)

        if self.allow_all:
            return not any(hit(key) and b & bits for key, b in self.exceptions.items())
        return any(hit(key) and b & bits == bits for key, b in self.exceptions.items())

    def listed(self):
        if self.allow_all:
            return "a *:* rwm\n"
        letters = lambda b: "".join(c for c in "rwm" if b & BITS[c])
        star = lambda n: "*" if n is None else str(n)
        return "".join(f"{k} {star(ma)}:{star(mi)} {letters(b)}\n" for (k, ma, mi), b in self.exceptions.items())

    def permits(self):
        return {
            (k, ma, mi, b)
            for k in "bc"
            for ma in (1, 4, 7)
            for mi in (3, 5, 9)
            for b in range(1, 8)
            if self.allows(k, ma, mi, b)
        }

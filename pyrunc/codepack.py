"""One load for pyrunc's own modules: their code objects in one file, found in one index.

An import through the path finder costs a few stats, an open, a read and some of
importlib's Python code per module; `run` imports some fifty of pyrunc's.  The pack,
<package>/__pycache__/codepack.<cache tag>.pack (beside the .pyc files, with their
trust; built by `make setup`: `python -m pyrunc.codepack`), holds each module's code
object, marshalled, with the path, size and mtime of the source it was compiled from.
`install` reads the pack's index (one small read) and puts a finder first on
sys.meta_path; the finder serves a module only while its source is still the one the
pack was built from (one stat), reading its code with one pread: a module edited, moved
or removed since is imported the normal way, and a pack of another interpreter (another
bytecode magic) or of another format is not used at all.  The pack is read by offset,
never whole: a command that needs a dozen modules faults in only their pages.

The launcher's boot code calls `install` before it imports the CLI
(pyrunc/launcher/__init__.py); tests/unit/import_probe.py does the same, so the import
pins hold for what the installed command loads.  No fd is kept open.
"""

import marshal
import os
import sys
from _frozen_importlib import ModuleSpec
from _frozen_importlib_external import MAGIC_NUMBER

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import CodeType, ModuleType
else:
    CodeType = type(compile("", "", "exec"))  # types.py is not loaded at start: not for this

FORMAT = b"pyrunc-codepack 2\n"
# The file: FORMAT, MAGIC_NUMBER, the index's length (8 bytes, little-endian), the index
# (marshalled), then each module's marshalled code.
# The index, name: (source path, its st_mtime_ns, its st_size, is a package, offset, length)
Entry = tuple[str, int, int, bool, int, int]
_INDEX_READ = 1 << 16  # one read covers the header and the index of pyrunc's pack


def pack_path(package_dir: str | None = None) -> str:
    package_dir = package_dir or os.path.dirname(os.path.abspath(__file__))
    return os.path.join(package_dir, "__pycache__", f"codepack.{sys.implementation.cache_tag}.pack")


class PackFinder:
    """A meta path finder and loader for the modules of one pack."""

    def __init__(self, path: str, identity: tuple[int, int, int], entries: "dict[str, Entry]") -> None:
        self.path = path
        self.identity = identity  # the pack's (st_dev, st_ino, st_size) when its index was read
        self.entries = entries

    def find_spec(self, name: str, path: object = None, target: object = None) -> ModuleSpec | None:
        entry = self.entries.get(name)
        if entry is None:
            return None
        source, mtime_ns, size, is_pkg, _, _ = entry
        try:
            st = os.stat(source)
        except OSError:
            return None
        if st.st_mtime_ns != mtime_ns or st.st_size != size:
            return None  # stale: the path finder compiles the source as it is now
        spec = ModuleSpec(name, self, origin=source, is_package=is_pkg)  # type: ignore[arg-type]  # a Loader but for its base
        spec.has_location = True  # __file__ is the source, as with a normal import
        if is_pkg:  # submodules outside the pack are found the normal way, in its directory
            spec.submodule_search_locations = [os.path.dirname(source)]
        return spec

    def create_module(self, spec: ModuleSpec) -> None:
        return None

    def exec_module(self, module: "ModuleType") -> None:
        source, _, _, _, offset, length = self.entries[module.__name__]
        exec(self._code(offset, length) or _compile(source), module.__dict__)

    def _code(self, offset: int, length: int) -> "CodeType | None":
        """The code at offset in the pack whose index was read; None when the pack was
        replaced since (a `make setup` meanwhile), or is cut short or unreadable."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except OSError:
            return None
        try:
            st = os.fstat(fd)
            if (st.st_dev, st.st_ino, st.st_size) != self.identity:
                return None
            data = os.pread(fd, length, offset)
        except OSError:
            return None
        finally:
            os.close(fd)
        try:
            code = marshal.loads(data)
        except (EOFError, ValueError, TypeError):
            return None
        return code if type(code) is CodeType else None


def _compile(source: str) -> "CodeType":
    """The module's code from its source, which find_spec found unchanged: the pack
    cannot give it."""
    with open(source, "rb") as f:
        text = f.read()
    code: CodeType = compile(text, source, "exec", dont_inherit=True)
    return code


def install(path: str | None = None) -> PackFinder | None:
    """Serve pyrunc's modules from the pack at path (pack_path()'s by default) when it is
    there and of this interpreter; returns the finder, or None when there is none."""
    path = path or pack_path()
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        data = os.read(fd, _INDEX_READ)
        head = FORMAT + MAGIC_NUMBER
        if not data.startswith(head) or len(data) < len(head) + 8:
            return None
        start = len(head) + 8
        end = start + int.from_bytes(data[len(head) : start], "little")
        if end > len(data):  # a bigger index than pyrunc's: one more read
            data += os.pread(fd, end - len(data), len(data))
    finally:
        os.close(fd)
    try:
        entries = marshal.loads(data[start:end])
    except (EOFError, ValueError, TypeError):
        return None
    if type(entries) is not dict:
        return None
    # Entries past the file's end (a pack cut short) are never served.
    entries = {n: e for n, e in entries.items() if e[4] + e[5] <= st.st_size}
    finder = PackFinder(path, (st.st_dev, st.st_ino, st.st_size), entries)
    sys.meta_path.insert(0, finder)
    return finder


def build(package_dir: str | None = None, dest: str | None = None) -> tuple[str, int]:
    """Compile every module of the package at package_dir (pyrunc's by default) into a
    pack at dest (pack_path()'s), replaced in one rename; returns (dest, modules)."""
    package_dir = os.path.abspath(package_dir or os.path.dirname(os.path.abspath(__file__)))
    dest = dest or pack_path(package_dir)
    top = os.path.dirname(package_dir)
    entries: dict[str, Entry] = {}
    codes: list[bytes] = []
    for dirpath, dirnames, filenames in os.walk(package_dir):
        dirnames[:] = sorted(d for d in dirnames if os.path.isfile(os.path.join(dirpath, d, "__init__.py")))
        for filename in sorted(filenames):
            if not filename.endswith(".py"):
                continue
            source = os.path.join(dirpath, filename)
            parts = os.path.relpath(source, top)[: -len(".py")].split(os.sep)
            is_pkg = parts[-1] == "__init__"
            name = ".".join(parts[:-1] if is_pkg else parts)
            if name == __name__:
                continue  # loaded before the pack, the normal way
            st = os.stat(source)
            with open(source, "rb") as f:
                text = f.read()
            if os.stat(source).st_mtime_ns != st.st_mtime_ns:
                raise OSError(f"{source} changed while it was read")
            code = marshal.dumps(compile(text, source, "exec", dont_inherit=True))
            entries[name] = (source, st.st_mtime_ns, st.st_size, is_pkg, sum(map(len, codes)), len(code))
            codes.append(code)
    head = FORMAT + MAGIC_NUMBER
    # The offsets so far count from the first code: shift them past the header and index
    # (whose marshalled length does not depend on the values' size: fixed-width ints).
    index_len = len(marshal.dumps(entries))
    base = len(head) + 8 + index_len
    entries = {n: (src, mt, sz, pkg, base + off, ln) for n, (src, mt, sz, pkg, off, ln) in entries.items()}
    index = marshal.dumps(entries)
    if len(index) != index_len:
        raise ValueError("pyrunc.codepack: the index changed length with its offsets")
    os.makedirs(os.path.dirname(dest), exist_ok=True)
    tmp = f"{dest}.{os.getpid()}.tmp"
    with open(tmp, "wb") as f:
        f.write(head + len(index).to_bytes(8, "little") + index)
        for code in codes:
            f.write(code)
    os.rename(tmp, dest)
    return dest, len(entries)


def main(argv: list[str]) -> int:
    if argv:
        sys.stderr.write("usage: python -m pyrunc.codepack\n")
        return 2
    dest, count = build()
    print(f"pyrunc.codepack: {dest}: {count} modules")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

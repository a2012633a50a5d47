"""Linux mechanics: each concern in its own module, all kernel calls through kernel.py
(and pidfds.py, the part of it `kill` and `delete` reach without ctypes)."""

# Annotations name typing's types only for mypy (quoted): importing typing costs every command.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from pyrunc.linux.cgroups.files import CgroupFiles
    from pyrunc.linux.kernel import Kernel
    from pyrunc.linux.pidfds import Pidfds


class Seams:
    """What a command reaches the host through, made once per command (cli.commands) and
    passed down, never looked up: `kernel` (a kernel.Kernel) and `cgroup_files` (a
    cgroups.files.CgroupFiles).  With `tracing`, each is the step trace's recording
    wrapper of the real one (trace.RecordingKernel, trace.RecordingCgroupFiles).  Each is
    made when first asked for: a command that never reaches the kernel (`state`, `list`)
    imports neither.  Tests pass doubles in."""

    def __init__(
        self, kernel: "Kernel | None" = None, cgroup_files: "CgroupFiles | None" = None, tracing: bool = False
    ) -> None:
        self._kernel = kernel
        self._files = cgroup_files
        self.tracing = tracing

    @property
    def kernel(self) -> "Kernel":
        if self._kernel is None:
            from pyrunc.linux.kernel import Kernel

            k = Kernel()
            if self.tracing:
                from pyrunc import trace

                # a proxy: each method of the Kernel it wraps, recorded (trace.py)
                k = trace.RecordingKernel(k)  # type: ignore[assignment]
            self._kernel = k
        return self._kernel

    @property
    def pidfds(self) -> "Pidfds":
        """The kernel's pidfd calls (`kill`, `delete`): the kernel itself once one was
        passed in, made or traced (the trace records each call), else pidfds.Pidfds, the
        same calls without ctypes or kernel.py."""
        if self._kernel is not None or self.tracing:
            return self.kernel
        from pyrunc.linux.pidfds import Pidfds

        return Pidfds()

    @property
    def cgroup_files(self) -> "CgroupFiles":
        if self._files is None:
            from pyrunc.linux.cgroups.files import REAL_FILES, CgroupFiles

            files: CgroupFiles = REAL_FILES
            if self.tracing:
                from pyrunc import trace

                files = trace.RecordingCgroupFiles(files)
            self._files = files
        return self._files

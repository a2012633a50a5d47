/*
 * pyrunc's launcher: installed as `pyrunc`, it starts the Python interpreter on pyrunc,
 * and starts it sealed.
 *
 * pyrunc forks its containers' init processes, so until an init execs the user's
 * program, its /proc/<pid>/exe is the interpreter.  A container that gets the kernel to
 * run that file again (CVE-2019-5736) could open it for writing once nothing runs it.
 * So the interpreter is exec'd from a detached, read-only clone of its mount (no copy
 * made; needs CAP_SYS_ADMIN), else from a sealed memfd copy of the file.  Doing that
 * here costs a few syscalls; doing it from Python costs a second interpreter start
 * (pyrunc/linux/sealed_exe.py, which still covers `python -m pyrunc` and pip's script).
 *
 * The interpreter runs with -I -S: no site, no user or environment paths; the import
 * path is fixed when the launcher is built (pyrunc/launcher/__init__.py).
 *
 * Built with PYRUNC_EMBED (where the interpreter is a shared libpython), the launcher is
 * the interpreter: it runs Python in its own process, with the same settings, and saves
 * the exec of a second program and its dynamic loading on every command.  Only the
 * commands that fork a container process (create, run, exec) still exec, once, to run
 * from a sealed copy of the launcher itself: the others (state, list, kill, ...) never
 * fork anything a container could reach.  libpython is built in from the interpreter's
 * static library where there is one; else the shared one is loaded (dlopen) only to run
 * Python, after that exec, so that the first start of create, run and exec never loads
 * it.  The interpreter starts on pyrunc's own `encodings` package (PYRUNC_SEARCH_PATH,
 * set_search_path below).
 *
 * Built on the static libpython, it also has pyrunc's kernel primitive built in (the
 * module _pyrunc_kernel below), on which the kernel seam makes its calls without ctypes.
 *
 * For the commands that move a process into the container's cgroup (create, run, exec),
 * it first forks a helper that pays the kernel's wait before a cgroup.procs write (see
 * cgroup_warm_up below) while the interpreter starts.
 *
 * PYRUNC_PYTHON, PYRUNC_BOOT, and with PYRUNC_EMBED PYRUNC_SEARCH_PATH and (for the
 * shared libpython) PYRUNC_LIBPYTHON are string literals given with -D at build time.
 */
#ifdef PYRUNC_EMBED
#define PY_SSIZE_T_CLEAN
#include <Python.h> /* first, as Python asks: it sets the feature macros */
#include <dlfcn.h>
#else
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/magic.h>
#include <linux/mount.h>

/* The helper's pid, for pyrunc/linux/cgroup_warm_up.py, which stops and reaps it. */
#define HELPER_ENV "PYRUNC_CGROUP_WARM_UP"
#define WARM_UP_INTERVAL_NS 4000000L /* one write each 4 ms keeps the kernel's fast path */
#define WARM_UP_LIMIT_NS 1000000000L /* never longer than a second, whatever happens */

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U /* kernels with vm.memfd_noexec need it to keep a memfd executable */
#endif

extern char **environ;

static int read_only_clone(const char *path)
{
	int fd = syscall(SYS_open_tree, AT_FDCWD, path, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC);
	if (fd < 0)
		return -1;
	struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
	if (syscall(SYS_mount_setattr, fd, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

static int sealed_memfd_copy(const char *path)
{
	int src = open(path, O_RDONLY | O_CLOEXEC);
	if (src < 0)
		return -1;
	struct stat st;
	int fd = -1;
	if (fstat(src, &st) < 0)
		goto out;
	fd = memfd_create("pyrunc-sealed-exe", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
	if (fd < 0) /* a kernel older than MFD_EXEC (6.3) refuses the flag */
		fd = memfd_create("pyrunc-sealed-exe", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (fd < 0)
		goto out;
	for (off_t offset = 0; offset < st.st_size;) {
		ssize_t sent = sendfile(fd, src, &offset, st.st_size - offset);
		if (sent <= 0)
			goto fail;
	}
	if (fcntl(fd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) == 0)
		goto out;
fail:
	close(fd);
	fd = -1;
out:
	close(src);
	return fd;
}

/* Whether the command starts a process in a container, and so moves it into the
 * container's cgroup: create, run or exec, its first word that is neither a global flag
 * nor a global flag's value. */
static int starts_container_process(int argc, char **argv)
{
	static const char *const with_value[] = { "--root", "--log", "--log-format", "--rootless",
						  "--trace", "--criu", "-root", "-log", "-log-format",
						  "-rootless", "-trace", "-criu", NULL };
	for (int i = 1; i < argc; i++) {
		const char *arg = argv[i];
		if (arg[0] != '-')
			return !strcmp(arg, "exec") || !strcmp(arg, "run") || !strcmp(arg, "create");
		for (int j = 0; with_value[j]; j++)
			if (!strcmp(arg, with_value[j])) {
				i++;
				break;
			}
	}
	return 0;
}

/* Our own cgroup's cgroup.procs, opened for writing, in the v2 hierarchy or else the first
 * v1 one that opens; -1 when none does (not root, no cgroupfs). */
static int open_own_cgroup_procs(void)
{
	char buf[8192], path[8300];
	int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n = read(fd, buf, sizeof buf - 1);
	close(fd);
	if (n <= 0)
		return -1;
	buf[n] = 0;
	for (char *line = buf, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		char *ctrl = strchr(line, ':'); /* id:controllers:path */
		char *cg = ctrl ? strchr(ctrl + 1, ':') : NULL;
		if (!cg)
			continue;
		*cg++ = 0;
		ctrl++;
		if (!strncmp(ctrl, "name=", 5))
			ctrl += 5;
		for (int i = 0; i < 2; i++) {
			const char *dir = *ctrl ? ctrl : i ? "unified" : ""; /* v2: pure, or hybrid's */
			if (*ctrl && i)
				break;
			snprintf(path, sizeof path, "/sys/fs/cgroup/%s%s%s/cgroup.procs", dir, *dir ? "/" : "", cg);
			fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
			if (fd < 0)
				continue;
			struct statfs fs;
			if (fstatfs(fd, &fs) == 0 &&
			    (fs.f_type == CGROUP2_SUPER_MAGIC || fs.f_type == CGROUP_SUPER_MAGIC))
				return fd;
			close(fd);
		}
	}
	return -1;
}

static long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

/*
 * The kernel serialises every cgroup.procs write, in any hierarchy, with one lock whose
 * writer waits out an RCU grace period (10-16 ms here) unless another write took it in
 * the last grace period or so.  exec would pay that wait in series: its process cannot
 * exec before it is in the container's cgroup, and little else overlaps; so would create,
 * whose init, joining late, waits for its move once it has built the container.  So a helper
 * writes "0" (itself, where it already is: nothing moves) to its own cgroup.procs at
 * once, while the interpreter starts, and again every 4 ms, keeping the kernel on its
 * fast path until pyrunc has made its moves and stops it (cgroup_warm_up.py), at the
 * latest when a second has passed or its parent has died.  It holds no fd of ours.
 * Without it (pyrunc started another way) create pays the wait with a stand-in's move
 * (requests.py) once the cgroup is made, which ends later than the child's setup.
 */
static void cgroup_warm_up(void)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0)
		return;
	if (pid > 0) {
		char text[24];
		snprintf(text, sizeof text, "%d", pid);
		setenv(HELPER_ENV, text, 1);
		return;
	}
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(0);
	if (syscall(SYS_close_range, 0, ~0U, 0) < 0)
		for (int fd = 0; fd < 1024; fd++)
			close(fd);
	prctl(PR_SET_NAME, "pyrunc:warm-up");
	int fd = open_own_cgroup_procs();
	if (fd < 0)
		_exit(0);
	long deadline = now_ns() + WARM_UP_LIMIT_NS;
	struct timespec pause = { 0, WARM_UP_INTERVAL_NS };
	do {
		if (write(fd, "0", 1) < 0 && (errno == EACCES || errno == EPERM))
			break;
		nanosleep(&pause, NULL);
	} while (now_ns() < deadline);
	_exit(0);
}

/* An fd of path that nobody can write, to exec: -1 when it cannot be made. */
static int sealed_fd(const char *path)
{
	int fd = read_only_clone(path);
	return fd >= 0 ? fd : sealed_memfd_copy(path);
}

#ifdef PYRUNC_EMBED
/* Set across the launcher's exec of its sealed self (and taken out at once), so that the
 * second start runs Python instead of sealing again.  A caller that sets it gets an
 * unsealed start, which pyrunc's own check re-executes sealed (sealed_exe.py). */
#define SEALED_ENV "PYRUNC_LAUNCHER_SEALED"

#ifdef PYRUNC_LIBPYTHON
/*
 * The shared libpython (PYRUNC_LIBPYTHON, its path given with -D at build time) is loaded
 * here with dlopen, not linked: the first start of create, run and exec only forks the
 * helper, seals and re-executes the launcher, and the dynamic loader's load and
 * relocation of libpython cost each of those starts 0.9 ms of CPU and 330 page faults for
 * nothing (docs/performance.md).  RTLD_GLOBAL: the extension modules Python loads take
 * its symbols from the process, as from a linked libpython.  Where the interpreter's
 * static library is there (libpython3.X.a), the launcher is built on it instead (no
 * PYRUNC_LIBPYTHON): nothing to load or relocate in any start.
 */
static void *libpython;

static void *python_symbol(const char *name)
{
	void *found = dlsym(libpython, name);
	if (!found) {
		fprintf(stderr, "pyrunc: %s: %s\n", PYRUNC_LIBPYTHON, dlerror());
		exit(127);
	}
	return found;
}

/* A libpython function by its name, typed as Python.h declares it. */
#define PY(name) ((__typeof__(name) *)python_symbol(#name))
#else
#define PY(name) name /* built in (the static library) */
#endif

static void exit_on_error(PyStatus status)
{
	if (PY(PyStatus_Exception)(status))
		PY(Py_ExitStatusException)(status);
}

#ifdef PYRUNC_SEARCH_PATH
/* The module search path, ':'-separated: pyrunc/launcher/startup first, whose `encodings`
 * the interpreter imports while it starts (a tenth of its start saved), then the
 * interpreter's own entries as `python -I -S` has them.  Set here: nothing of ours runs
 * before that import. */
static void set_search_path(PyConfig *config)
{
	char *paths = strdup(PYRUNC_SEARCH_PATH);
	if (!paths) {
		fprintf(stderr, "pyrunc: out of memory\n");
		exit(127);
	}
	for (char *entry = strtok(paths, ":"); entry; entry = strtok(NULL, ":")) {
		wchar_t *wide = PY(Py_DecodeLocale)(entry, NULL);
		if (!wide) {
			fprintf(stderr, "pyrunc: cannot decode %s\n", entry);
			exit(127);
		}
		exit_on_error(PY(PyWideStringList_Append)(&config->module_search_paths, wide));
		PY(PyMem_RawFree)(wide);
	}
	free(paths);
	config->module_search_paths_set = 1;
}
#endif

#ifndef PYRUNC_LIBPYTHON
/*
 * _pyrunc_kernel: the primitive under pyrunc's kernel seam (pyrunc/linux/kernel.py), built
 * into the interpreter, so that create, run and exec load neither ctypes nor libffi (0.9 ms
 * before their fork) and each kernel call is one C call.  The same two functions over
 * ctypes (pyrunc/linux/ffi.py) serve any other interpreter.  Not in the build on the
 * shared libpython, whose every C-API function is looked up by name (PY above).
 *
 * syscall(nr, *args): syscall(2) with up to six arguments, each an int (passed as a long,
 * a negative one in two's complement), None (NULL), bytes (a pointer to its bytes, which
 * Python ends with a NUL) or a writable buffer (a pointer to it: what the kernel fills
 * in).  Returns the result, or -errno.
 */
static PyObject *kernel_syscall(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
	long value[6] = {0};
	Py_buffer views[6];
	int viewed[6] = {0};
	PyObject *result = NULL;
	(void)module;
	if (nargs < 1 || nargs > 7) {
		PyErr_SetString(PyExc_TypeError, "syscall(nr, up to six arguments)");
		return NULL;
	}
	long nr = PyLong_AsLong(args[0]);
	if (nr == -1 && PyErr_Occurred())
		return NULL;
	for (Py_ssize_t i = 1; i < nargs; i++) {
		PyObject *arg = args[i];
		long *slot = &value[i - 1];
		if (arg == Py_None) {
			*slot = 0;
		} else if (PyLong_Check(arg)) {
			*slot = (long)PyLong_AsUnsignedLongMask(arg);
			if (PyErr_Occurred())
				goto done;
		} else if (PyBytes_Check(arg)) {
			*slot = (long)PyBytes_AS_STRING(arg);
		} else {
			if (PyObject_GetBuffer(arg, &views[i - 1], PyBUF_WRITABLE) < 0)
				goto done;
			viewed[i - 1] = 1;
			*slot = (long)views[i - 1].buf;
		}
	}
	long ret;
	Py_BEGIN_ALLOW_THREADS
	ret = syscall(nr, value[0], value[1], value[2], value[3], value[4], value[5]);
	if (ret == -1)
		ret = -errno;
	Py_END_ALLOW_THREADS
	result = PyLong_FromLong(ret);
done:
	for (int i = 0; i < 6; i++)
		if (viewed[i])
			PyBuffer_Release(&views[i]);
	return result;
}

/* address(obj): where the bytes of a bytes object, or of a writable buffer, lie, for a
 * structure that points at them (seccomp's program, bpf's); valid while obj lives and,
 * for a buffer, is not resized. */
static PyObject *kernel_address(PyObject *module, PyObject *obj)
{
	(void)module;
	if (PyBytes_Check(obj))
		return PyLong_FromVoidPtr(PyBytes_AS_STRING(obj));
	Py_buffer view;
	if (PyObject_GetBuffer(obj, &view, PyBUF_WRITABLE) < 0)
		return NULL;
	PyObject *address = PyLong_FromVoidPtr(view.buf);
	PyBuffer_Release(&view);
	return address;
}

static PyMethodDef kernel_methods[] = {
	{"syscall", (PyCFunction)(void (*)(void))kernel_syscall, METH_FASTCALL, NULL},
	{"address", kernel_address, METH_O, NULL},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef kernel_module = {
	PyModuleDef_HEAD_INIT, "_pyrunc_kernel", NULL, -1, kernel_methods, NULL, NULL, NULL, NULL,
};

static PyObject *kernel_module_init(void)
{
	return PyModule_Create(&kernel_module);
}
#endif

/* What `PYRUNC_PYTHON -I -S -c PYRUNC_BOOT ARGS...` would run, in this process: the
 * same isolation, site skipped, sys.argv ["-c", ARGS...], and sys.executable the
 * interpreter, from which Python finds its prefix and the venv. */
static int run_python(int argc, char **argv)
{
#ifdef PYRUNC_LIBPYTHON
	libpython = dlopen(PYRUNC_LIBPYTHON, RTLD_LAZY | RTLD_GLOBAL);
	if (!libpython) {
		fprintf(stderr, "pyrunc: %s\n", dlerror());
		return 127;
	}
#endif
	PyPreConfig preconfig;
	PY(PyPreConfig_InitPythonConfig)(&preconfig);
	preconfig.isolated = 1;
	preconfig.use_environment = 0;
	exit_on_error(PY(Py_PreInitialize)(&preconfig));

#ifndef PYRUNC_LIBPYTHON
	if (PyImport_AppendInittab("_pyrunc_kernel", kernel_module_init) < 0) {
		fprintf(stderr, "pyrunc: cannot add the _pyrunc_kernel module\n");
		return 127;
	}
#endif
	PyConfig config;
	PY(PyConfig_InitPythonConfig)(&config);
	config.isolated = 1;
	config.site_import = 0;
	config.parse_argv = 0;
	argv[0] = "-c";
	exit_on_error(PY(PyConfig_SetBytesArgv)(&config, argc, argv));
	exit_on_error(PY(PyConfig_SetBytesString)(&config, &config.run_command, PYRUNC_BOOT));
	exit_on_error(PY(PyConfig_SetBytesString)(&config, &config.program_name, PYRUNC_PYTHON));
	exit_on_error(PY(PyConfig_SetBytesString)(&config, &config.executable, PYRUNC_PYTHON));
#ifdef PYRUNC_SEARCH_PATH
	set_search_path(&config);
#endif
	exit_on_error(PY(Py_InitializeFromConfig)(&config));
	PY(PyConfig_Clear)(&config);
	return PY(Py_RunMain)();
}

int main(int argc, char **argv)
{
	if (getenv(SEALED_ENV)) {
		unsetenv(SEALED_ENV);
		return run_python(argc, argv);
	}
	unsetenv(HELPER_ENV); /* only ever ours: a value from the caller names no helper */
	if (starts_container_process(argc, argv)) {
		cgroup_warm_up();
		int fd = sealed_fd("/proc/self/exe");
		if (fd >= 0) {
			setenv(SEALED_ENV, "1", 1);
			fexecve(fd, argv, environ);
			unsetenv(SEALED_ENV);
			close(fd);
		}
		/* Unsealed: pyrunc's own check re-executes the interpreter sealed. */
	}
	return run_python(argc, argv);
}
#else
int main(int argc, char **argv)
{
	unsetenv(HELPER_ENV); /* only ever ours: a value from the caller names no helper */
	if (starts_container_process(argc, argv))
		cgroup_warm_up();

	/* python -I -S -c BOOT ARGS...: argv[0] stays the interpreter's path, from which
	 * Python finds its prefix and the venv. */
	char **args = calloc(argc + 4, sizeof *args);
	if (!args)
		return 127;
	args[0] = PYRUNC_PYTHON;
	args[1] = "-IS";
	args[2] = "-c";
	args[3] = PYRUNC_BOOT;
	memcpy(args + 4, argv + 1, (argc - 1) * sizeof *args);

	int fd = sealed_fd(PYRUNC_PYTHON);
	if (fd >= 0)
		fexecve(fd, args, environ);
	/* Unsealed: pyrunc's own check re-executes the commands that need it. */
	execv(PYRUNC_PYTHON, args);
	fprintf(stderr, "pyrunc: exec %s: %s\n", PYRUNC_PYTHON, strerror(errno));
	return 127;
}
#endif

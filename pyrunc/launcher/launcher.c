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
 * PYRUNC_PYTHON and PYRUNC_BOOT are string literals given with -D at build time.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/mount.h>

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

int main(int argc, char **argv)
{
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

	int fd = read_only_clone(PYRUNC_PYTHON);
	if (fd < 0)
		fd = sealed_memfd_copy(PYRUNC_PYTHON);
	if (fd >= 0)
		fexecve(fd, args, environ);
	/* Unsealed: pyrunc's own check re-executes the commands that need it. */
	execv(PYRUNC_PYTHON, args);
	fprintf(stderr, "pyrunc: exec %s: %s\n", PYRUNC_PYTHON, strerror(errno));
	return 127;
}

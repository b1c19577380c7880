/* husk-init - the clone-to-exec half of husk.
 *
 * husk (Python) spawns this static helper with one end of a socketpair,
 * writes it a fully resolved plan (husk_proto.h) and reads back records.
 * No Python runs between clone and execve: everything a container
 * process does before it becomes the user's program happens here.
 *
 *   husk ──plan──▶ stage 0 ──clone(CLONE_PARENT|CLONE_NEW*)──▶ container init
 *                  joins namespaces      waits for "go"; mounts, pivot_root,
 *                  writes id maps        masks, identity, caps; READY;
 *                  sends MSG_PID, exits  waits on the exec fifo; execve
 *
 * CLONE_PARENT makes the container a child of husk itself (or of the
 * subreaper that called husk), so stage 0 can exit at once.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later */
#define _GNU_SOURCE
#include "husk_proto.h"
#include "plan.h"
#include "process.h"
#include "rootfs.h"
#include "seccomp.h"
#include "apparmor.h"
#include "cgroup_bpf.h"
#include "trace.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/personality.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <dirent.h>
#include <linux/keyctl.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

/* husk-init's trace sink: each step to the front end, as it happens
 * (trace.h).  The container init shares the socket with stage 0, which
 * has exited by the time the init takes its first step. */
void
trace_sink (long long time_us, const char *source, int line, const char *mechanism, const char *step,
            const char *call)
{
  char rec[4096];
  int64_t t = time_us;
  uint32_t ln = line;
  memcpy (rec, &t, 8);
  memcpy (rec + 8, &ln, 4);
  int n = snprintf (rec + 12, sizeof rec - 12, "%s%c%s%c%s%c%s%c%s", husk_trace_who, 0, source, 0, mechanism, 0,
                    step, 0, call);
  if (husk_sock >= 0 && n > 0 && n < (int) sizeof rec - 12)
    (void) send_record (husk_sock, MSG_TRACE, rec, 12 + n); /* not shown, if it cannot be sent */
}

static const char *
ns_name (int64_t type)
{
  switch (type)
    {
    case CLONE_NEWUSER: return "user";
    case CLONE_NEWPID: return "pid";
    case CLONE_NEWNS: return "mount";
    case CLONE_NEWNET: return "network";
    case CLONE_NEWUTS: return "uts";
    case CLONE_NEWIPC: return "ipc";
    case CLONE_NEWCGROUP: return "cgroup";
    case CLONE_NEWTIME: return "time";
    default: return "?";
    }
}

/* setns(2) into each namespace given by path; the user namespace first, so
 * the others are joined with the privileges it grants.  All are opened
 * before any is joined: once in the container's mount namespace, its
 * /proc no longer shows the host pids the paths name. */
static void
join_namespaces (struct plan *p)
{
  int fds[16];
  if (p->njoins > 16)
    die (E2BIG, "join namespace", "%zu namespaces", p->njoins);
  for (size_t i = 0; i < p->njoins; i++)
    {
      fds[i] = open (p->joins[i].path, O_RDONLY | O_CLOEXEC);
      if (fds[i] < 0)
        die (errno, "join namespace", "%s %s", ns_name (p->joins[i].type), p->joins[i].path);
    }
  for (int pass = 0; pass < 2; pass++)
    for (size_t i = 0; i < p->njoins; i++)
      {
        struct ns_join *j = &p->joins[i];
        if ((j->type == CLONE_NEWUSER) != (pass == 0))
          continue;
        if (setns (fds[i], j->type) < 0)
          die (errno, "join namespace", "%s %s", ns_name (j->type), j->path);
        TRACE ("namespaces", "setns", "setns(open(\"%s\"), %s): join the %s namespace", j->path,
               trace_clone_flags (j->type), ns_name (j->type));
        close (fds[i]);
      }
}

static void
write_id_map (pid_t pid, const char *file, const char *map)
{
  char path[64];
  snprintf (path, sizeof path, "/proc/%d/%s", pid, file);
  if (write_file_at (AT_FDCWD, path, map, strlen (map)) < 0)
    die (errno, "user namespace", "write %s", path);
  TRACE ("user namespace", file, "write %s: %s", path, trace_escape (map));
}

static int
in_new_userns (struct plan *p)
{
  if (p->clone_flags & CLONE_NEWUSER)
    return 1;
  for (size_t i = 0; i < p->njoins; i++)
    if (p->joins[i].type == CLONE_NEWUSER)
      return 1;
  return 0;
}

/* argv's fd numbers: digits only, so a stray argument (husk-init run
 * through a `#!/proc/self/exe` script) is refused, not read as fd 0. */
static int
parse_fd (const char *s)
{
  char *end;
  errno = 0;
  long n = strtol (s, &end, 10);
  if (errno || end == s || *end || n < 3 || n > INT_MAX)
    return -1;
  return (int) n;
}

/* Mark every fd from `from` up close-on-exec.  close_range(2) does it in
 * one call; where it is missing (ENOSYS) or refused (EPERM, a filter of
 * the caller's), walk /proc/self/fd as runc's CloseExecFrom does. */
static void
mark_fds_cloexec (unsigned int from)
{
  if (close_range (from, ~0U, CLOSE_RANGE_CLOEXEC) == 0)
    {
      TRACE ("fds", "close_fds", "close_range(%u, ~0U, CLOSE_RANGE_CLOEXEC)", from);
      return;
    }
  if (errno != ENOSYS && errno != EPERM && errno != EINVAL)
    die (errno, "close fds", "close_range");
  DIR *d = opendir ("/proc/self/fd");
  if (d == NULL)
    die (errno, "close fds", "open /proc/self/fd");
  struct dirent *e;
  while ((e = readdir (d)) != NULL)
    {
      int fd = atoi (e->d_name);
      if (e->d_name[0] == '.' || fd == dirfd (d) || (unsigned int) fd < from)
        continue;
      int flags = fcntl (fd, F_GETFD);
      if (flags >= 0 && fcntl (fd, F_SETFD, flags | FD_CLOEXEC) < 0)
        die (errno, "close fds", "fd %d", fd);
    }
  closedir (d);
  TRACE ("fds", "close_fds", "fcntl(fd, F_SETFD, FD_CLOEXEC) for each fd >= %u in /proc/self/fd", from);
}

/* The program starts with default signal dispositions and an empty mask,
 * whatever husk's caller had: an ignored SIGPIPE or a blocked SIGTERM
 * inherited from a shell or a supervisor would change how it behaves. */
static void
reset_signals (void)
{
  /* rt_sigaction(2) directly: glibc's signal() refuses its two reserved
   * real-time signals (32, 33), which a caller may still have ignored.
   * The kernel's struct: handler, flags, restorer, mask. */
  struct
  {
    void (*handler) (int);
    unsigned long flags;
    void (*restorer) (void);
    unsigned long mask;
  } dfl = { SIG_DFL, 0, NULL, 0 };
  for (int sig = 1; sig <= 64; sig++)
    if (sig != SIGKILL && sig != SIGSTOP
        && syscall (SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask) < 0 && errno != EINVAL)
      die (errno, "signals", "reset signal %d", sig);
  unsigned long none = 0;
  if (syscall (SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof none) < 0)
    die (errno, "signals", "sigprocmask");
  TRACE ("process", "signals", "rt_sigaction(1..64, SIG_DFL); rt_sigprocmask(SIG_SETMASK, {})");
}

/* A session keyring of its own (keyctl KEYCTL_JOIN_SESSION_KEYRING, as
 * runc does): otherwise the container shares the caller's, and with it
 * whatever keys (credentials, tokens) were added to it on the host.
 * Keys are not namespaced by any namespace but the user one. */
static void
join_session_keyring (struct plan *p)
{
  if (p->session_keyring == NULL)
    return;  /* --no-new-keyring */
  long serial = syscall (SYS_keyctl, KEYCTL_JOIN_SESSION_KEYRING, p->session_keyring);
  if (serial < 0)
    {
      /* Kernels without keys (CONFIG_KEYS=n), or a filter in the way:
       * runc carries on; there is then no keyring to share either. */
      if (errno == ENOSYS || errno == EPERM || errno == EACCES)
        return;
      die (errno, "session keyring", "join %s", p->session_keyring);
    }
  /* Possessor: everything; user: view, read, search, link; group and
   * other: nothing.  The kernel's default plus "search", as runc sets. */
  if (syscall (SYS_keyctl, KEYCTL_SETPERM, serial, 0x3f1b0000) < 0 && errno != EPERM)
    die (errno, "session keyring", "set permissions of %s", p->session_keyring);
  TRACE ("keyring", "keyring", "keyctl(KEYCTL_JOIN_SESSION_KEYRING, \"%s\") = %ld", p->session_keyring, serial);
}

/* The container process, from clone to execve. */
__attribute__ ((noreturn)) static void
container_init (struct plan *p, int go, int fifo, struct device_program *devices)
{
  char byte, exe_buf[PATH_MAX];
  char *state = NULL;
  uint32_t state_len = 0;

  /* Wait until stage 0 has reported our pid and written our id maps. */
  if (read (go, &byte, 1) != 1)
    _exit (1);
  close (go);
  husk_trace_who = "container init";
  TRACE ("process", "init", "clone() returned 0: pid %d in the new namespaces", getpid ());
  if ((p->clone_flags & CLONE_NEWUSER) && (setresgid (0, 0, 0) < 0 || setresuid (0, 0, 0) < 0))
    die (errno, "user namespace", "become root in the new user namespace");
  umask (0);

  if (p->mode == HUSK_MODE_CREATE)
    {
      if (p->hostname && sethostname (p->hostname, strlen (p->hostname)) < 0)
        die (errno, "sethostname", "%s", p->hostname);
      if (p->hostname)
        TRACE ("namespaces", "hostname", "sethostname(\"%s\")", p->hostname);
      if (p->domainname && setdomainname (p->domainname, strlen (p->domainname)) < 0)
        die (errno, "setdomainname", "%s", p->domainname);
      if (p->domainname)
        TRACE ("namespaces", "hostname", "setdomainname(\"%s\")", p->domainname);

      int rootfd = rootfs_prepare (p, in_new_userns (p));
      /* Device nodes are made: the cgroup v2 device rules can go on. */
      attach_device_program (p, devices);

      /* The rootfs is mounted, pivot_root is next: husk runs the
       * prestart and createRuntime hooks now and sends the state. */
      uint32_t tag;
      TRACE ("hooks", "hooks", "send MSG_HOOKS: the front end runs prestart and createRuntime hooks now");
      if (send_record (husk_sock, MSG_HOOKS, NULL, 0) < 0
          || recv_record (husk_sock, &tag, &state, &state_len) < 0 || tag != MSG_STATE)
        _exit (1);
      run_hooks (p, HUSK_HOOK_CREATE_CONTAINER, state, state_len);

      rootfs_finalize (p, rootfd);
      rootfs_pivot (p, rootfd);
      close (rootfd);
    }

  setup_terminal (p);
  join_session_keyring (p);
  if (p->personality >= 0 && personality (p->personality) < 0)
    die (errno, "personality", "%#lx", (unsigned long) p->personality);
  if (p->personality >= 0)
    TRACE ("process", "personality", "personality(%#lx)", (unsigned long) p->personality);
  apply_rlimits (p);
  /* fd hygiene (CVE-2024-21626): whatever we hold above the fds the
   * process is meant to get closes at execve.  Marked now, before the
   * user's seccomp filter can forbid close_range; every fd husk-init
   * opens from here on is O_CLOEXEC. */
  mark_fds_cloexec (3 + p->preserve_fds);
  reset_signals ();
  apply_apparmor (p);
  /* The cwd and its check (CVE-2024-21626) come before any filter of the
   * user's, which may forbid getcwd. */
  bool in_cwd = enter_cwd (p, false);
  /* Without no_new_privs, installing a filter needs CAP_SYS_ADMIN: do it
   * while we still have it.  With no_new_privs it waits until just before
   * execve, so the filter need not allow husk-init's own syscalls. */
  if (!p->no_new_privs)
    load_seccomp (p);
  apply_identity (p);
  if (!in_cwd)
    enter_cwd (p, true);
  const char *exe = find_executable (p, exe_buf, sizeof exe_buf);
  umask (p->umask >= 0 ? p->umask : 022);
  TRACE ("process", "umask", "umask(%04lo)", (unsigned long) (p->umask >= 0 ? p->umask : 022));

  TRACE ("process", "ready", "send MSG_READY: set up%s",
         p->mode == HUSK_MODE_CREATE ? ", waiting for `husk start`" : "; execve follows");
  if (send_record (husk_sock, MSG_READY, NULL, 0) < 0)
    _exit (1);
  if (husk_trace != HUSK_TRACE_TO_EXEC)
    husk_trace = 0; /* create: the front end stops reading at READY */

  if (p->mode == HUSK_MODE_CREATE)
    {
      char path[32];
      if (husk_trace != HUSK_TRACE_TO_EXEC)
        {
          close (husk_sock);
          husk_sock = -1;
        }
      /* Block until `husk start` opens the fifo for reading.  The fd was
       * opened O_PATH before pivot_root; reopen it through /proc. */
      int w = open (fd_path (fifo, path), O_WRONLY | O_CLOEXEC);
      if (w < 0)
        _exit (1);
      close (fifo);
      husk_report_fd = w;
      if (write_all (w, "", 1) < 0)
        _exit (1);
      TRACE ("process", "start", "open(exec.fifo, O_WRONLY) returned: `husk start` opened it; going on");
      run_hooks (p, HUSK_HOOK_START_CONTAINER, state, state_len);
    }
  if (p->no_new_privs)
    load_seccomp (p);
  TRACE ("exec", "execve", "execve(\"%s\", [%zu args], [%zu env]): husk-init becomes the program", exe, p->nargs,
         p->nenv);
  execve (exe, p->args, p->env ? p->env : (char *[]){ NULL });
  die (errno, "exec", "%s", exe);
}

int
main (int argc, char **argv)
{
  struct plan plan;
  int go[2];

  int self_fd = -1;
  if ((argc != 2 && argc != 3) || (husk_sock = parse_fd (argv[1])) < 0
      || (argc == 3 && (self_fd = parse_fd (argv[2])) < 0))
    {
      fprintf (stderr, "usage: husk-init SOCKET-FD [SELF-FD]\n(husk-init is started by husk; it is not a command)\n");
      return 2;
    }
  /* SELF-FD is the sealed memfd husk executed us from (CVE-2019-5736):
   * the kernel holds the file for as long as we run; we need no fd. */
  if (self_fd >= 0)
    close (self_fd);
  plan_read (husk_sock, &plan);
  if (plan.nargs == 0)
    die (EINVAL, "read plan", "no process.args");
  husk_trace = plan.trace;
  TRACE ("process", "husk-init", "execve(/proc/self/fd/%d): husk-init runs from its sealed copy (pid %d)",
         self_fd, getpid ());
  TRACE ("process", "plan", "read the plan: %zu mounts, %zu args, clone flags %s", plan.nmounts, plan.nargs,
         trace_clone_flags (plan.clone_flags));

  /* oom_score_adj is inherited: set it here, where /proc is the host's. */
  if (plan.has_oom_score_adj)
    {
      char v[32];
      int n = snprintf (v, sizeof v, "%ld", (long) plan.oom_score_adj);
      if (write_file_at (AT_FDCWD, "/proc/self/oom_score_adj", v, n) < 0)
        die (errno, "oomScoreAdj", "%s", v);
      TRACE ("process", "oom_score_adj", "write /proc/self/oom_score_adj: %s", v);
    }

  /* Non-dumpable from here to execve, in every stage (the clone child
   * inherits it): a container process can then neither ptrace us nor
   * open /proc/<pid>/exe, mem or fd of ours (CVE-2019-5736).  After
   * oom_score_adj: a non-dumpable process cannot write its own /proc
   * files.  execve resets it for the user's program. */
  if (prctl (PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
    die (errno, "prctl", "PR_SET_DUMPABLE");
  TRACE ("process", "dumpable", "prctl(PR_SET_DUMPABLE, 0)");

  /* Device rules on cgroup v2: load the program now, while we have the
   * host's CAP_BPF; the container init attaches it once its device nodes
   * are made.  In a user namespace it could not (attaching needs the
   * host's capabilities), and needs not: its devices are bind mounts of
   * the host's, made by no mknod.  There, attach before it exists. */
  struct device_program devices = load_device_program (&plan);
  if (in_new_userns (&plan))
    attach_device_program (&plan, &devices);

  /* setns(CLONE_NEWNS) puts us at the mount namespace's root, which is
   * the container's root only if its init pivoted from the namespace
   * root: not after --no-pivot (chroot), nor when husk itself runs
   * chrooted.  Take the init's own root, opened before joining. */
  int exec_root = -1;
  if (plan.exec_root && (exec_root = open (plan.exec_root, O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
    die (errno, "exec", "open %s", plan.exec_root);
  join_namespaces (&plan);
  if (exec_root >= 0)
    {
      if (fchdir (exec_root) < 0 || chroot (".") < 0 || chdir ("/") < 0)
        die (errno, "exec", "enter the container's root %s", plan.exec_root);
      close (exec_root);
    }

  /* A time namespace cannot be made by clone (its flag collides with the
   * exit-signal bits); unshare puts our future children in it. */
  if (plan.clone_flags & CLONE_NEWTIME)
    {
      if (unshare (CLONE_NEWTIME) < 0)
        die (errno, "unshare", "time namespace");
      TRACE ("namespaces", "namespace", "unshare(CLONE_NEWTIME): a new time namespace, for the children");
      if (plan.timens_offsets
          && write_file_at (AT_FDCWD, "/proc/self/timens_offsets", plan.timens_offsets,
                            strlen (plan.timens_offsets)) < 0)
        die (errno, "time namespace", "write timens_offsets");
      plan.clone_flags &= ~(int64_t) CLONE_NEWTIME;
    }

  /* The exec fifo, opened while we are still the host's root (a user
   * namespace's root could not reach husk's state directory). */
  int fifo = -1;
  if (plan.mode == HUSK_MODE_CREATE)
    {
      if (plan.exec_fifo == NULL)
        die (EINVAL, "read plan", "create without an exec fifo");
      fifo = open (plan.exec_fifo, O_PATH | O_CLOEXEC);
      if (fifo < 0)
        die (errno, "open exec fifo", "%s", plan.exec_fifo);
      TRACE ("process", "exec_fifo", "open(\"%s\", O_PATH) = %d", plan.exec_fifo, fifo);
    }

  if (pipe2 (go, O_CLOEXEC) < 0)
    die (errno, "clone", "pipe");
  /* clone(2) without a new stack behaves like fork: we are single-threaded C. */
  pid_t pid = syscall (SYS_clone, (unsigned long) plan.clone_flags | CLONE_PARENT | SIGCHLD, 0, 0, 0, 0);
  if (pid < 0)
    die (errno, "clone", "flags %#lx", (unsigned long) plan.clone_flags);
  if (pid > 0)
    {
      TRACE ("namespaces", "clone", "clone(%s|SIGCHLD) = %d", trace_clone_flags (plan.clone_flags | CLONE_PARENT),
             pid);
      /* One step per namespace made, so each can be explained. */
      static const int64_t kinds[] = { CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNS, CLONE_NEWNET,
                                       CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWCGROUP };
      for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (plan.clone_flags & kinds[i])
          TRACE ("namespaces", "namespace", "%s: a new %s namespace for pid %d", trace_clone_flags (kinds[i]),
                 ns_name (kinds[i]), pid);
    }
  if (pid == 0)
    {
      close (go[1]);
      container_init (&plan, go[0], fifo, &devices);
    }
  close (go[0]);

  /* Report the pid first: from here on husk can kill and reap it. */
  if (send_int (husk_sock, MSG_PID, pid) < 0)
    _exit (1);
  if (plan.clone_flags & CLONE_NEWUSER)
    {
      /* Only a process outside the new user namespace may map ids into it. */
      if (plan.uid_map)
        write_id_map (pid, "uid_map", plan.uid_map);
      if (plan.gid_map)
        write_id_map (pid, "gid_map", plan.gid_map);
    }
  TRACE ("process", "go", "write(go pipe): the container init may start; husk-init's stage 0 exits");
  if (write_all (go[1], "g", 1) < 0)
    die (errno, "clone", "signal the container process");
  _exit (0);
}

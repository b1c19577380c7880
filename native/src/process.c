/* process.c - see process.h.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#define _GNU_SOURCE
#include "process.h"
#include "husk_proto.h"
#include "util.h"
#include "trace.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <linux/capability.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

void
apply_rlimits (struct plan *p)
{
  for (size_t i = 0; i < p->nrlimits; i++)
    {
      struct rlimit_entry *r = &p->rlimits[i];
      struct rlimit lim = { .rlim_cur = r->soft, .rlim_max = r->hard };
      if (setrlimit (r->type, &lim) < 0)
        die (errno, "setrlimit", "resource %ld soft %ld hard %ld", (long) r->type, (long) r->soft,
             (long) r->hard);
      TRACE ("rlimits", "rlimit", "setrlimit(%ld, {soft %lld, hard %lld})", (long) r->type, (long long) r->soft,
             (long long) r->hard);
    }
}

/* Hand the pty master to whoever listens on the console socket
 * (conmon, containerd's shim, husk run): SCM_RIGHTS over its unix socket. */
static void
send_console (int sock, int master)
{
  char name[] = "/dev/ptmx";
  char control[CMSG_SPACE (sizeof (int))] = { 0 };
  struct iovec iov = { .iov_base = name, .iov_len = sizeof name - 1 };
  struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                        .msg_controllen = sizeof control };
  struct cmsghdr *cmsg = CMSG_FIRSTHDR (&msg);
  cmsg->cmsg_level = SOL_SOCKET;
  cmsg->cmsg_type = SCM_RIGHTS;
  cmsg->cmsg_len = CMSG_LEN (sizeof (int));
  memcpy (CMSG_DATA (cmsg), &master, sizeof master);
  if (sendmsg (sock, &msg, MSG_NOSIGNAL) < 0)
    die (errno, "console socket", "send the pty master");
}

void
setup_terminal (struct plan *p)
{
  /* A new session: the container must not share the caller's
   * controlling terminal or process group. */
  if (setsid () < 0)
    die (errno, "setsid", "new session");
  TRACE ("process", "setsid", "setsid(): a session of its own, no controlling terminal of the caller's");
  if (p->console_fd < 0)
    return;

  /* The container's own devpts instance (its /dev/ptmx -> pts/ptmx). */
  cleanup_close int root = open ("/", O_PATH | O_DIRECTORY | O_CLOEXEC);
  cleanup_close int master = open_in_root (root, "/dev/ptmx", O_RDWR | O_NOCTTY, 0);
  if (master < 0)
    die (errno, "terminal", "open /dev/ptmx in the container");
  if (unlockpt (master) < 0)
    die (errno, "terminal", "unlockpt");
  /* TIOCGPTPEER opens the peer from the master itself: no path lookup in
   * /dev/pts that the container could race. */
  int slave = ioctl (master, TIOCGPTPEER, O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (slave < 0)
    die (errno, "terminal", "open the pty peer");
  if (fchown (slave, p->uid, -1) < 0)
    die (errno, "terminal", "chown the pty to uid %ld", (long) p->uid);
  send_console (p->console_fd, master);
  close (p->console_fd);
  p->console_fd = -1;
  if (ioctl (slave, TIOCSCTTY, 0) < 0)
    die (errno, "terminal", "make the pty the controlling terminal");
  for (int fd = 0; fd < 3; fd++)
    if (dup2 (slave, fd) < 0)
      die (errno, "terminal", "dup2 pty to fd %d", fd);
  close (slave);
  TRACE ("process", "terminal", "open(/dev/ptmx) in the container's devpts + ioctl(TIOCGPTPEER) + "
         "sendmsg(SCM_RIGHTS master) + ioctl(TIOCSCTTY)");
}

static int
capset_v3 (uint64_t effective, uint64_t permitted, uint64_t inheritable)
{
  struct __user_cap_header_struct head = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
  struct __user_cap_data_struct data[2] = {
    { .effective = effective, .permitted = permitted, .inheritable = inheritable },
    { .effective = effective >> 32, .permitted = permitted >> 32, .inheritable = inheritable >> 32 },
  };
  return syscall (SYS_capset, &head, data);
}

/* The capability sets now, for --explain's before and after. */
static const char *
caps_now (void)
{
  static char buf[4096];
  struct __user_cap_header_struct head = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
  struct __user_cap_data_struct data[2] = { { 0 } };
  uint64_t bounding = 0;
  syscall (SYS_capget, &head, data);
  for (int cap = 0; cap < 64; cap++)
    if (prctl (PR_CAPBSET_READ, cap, 0, 0, 0) == 1)
      bounding |= 1ULL << cap;
  uint64_t eff = data[0].effective | (uint64_t) data[1].effective << 32;
  snprintf (buf, sizeof buf, "effective %s; bounding %s", trace_caps (eff), trace_caps (bounding));
  return buf;
}

void
apply_identity (struct plan *p)
{
  TRACE ("capabilities", "caps_before", "capget + PR_CAPBSET_READ: %s", caps_now ());
  /* The bounding set first: dropping needs CAP_SETPCAP, which we still have. */
  if (p->cap_bounding != CAP_UNSET)
    for (int cap = 0; cap < 64; cap++)
      if (!(p->cap_bounding & (1ULL << cap)) && prctl (PR_CAPBSET_DROP, cap, 0, 0, 0) < 0
          && errno != EINVAL)
        die (errno, "capabilities", "drop %d from the bounding set", cap);
  if (p->cap_bounding != CAP_UNSET)
    TRACE ("capabilities", "bounding", "prctl(PR_CAPBSET_DROP) of each capability but %s",
           trace_caps (p->cap_bounding));

  /* Keep the permitted set across setuid, so capset can pick from it. */
  if (prctl (PR_SET_KEEPCAPS, 1, 0, 0, 0) < 0)
    die (errno, "capabilities", "PR_SET_KEEPCAPS");
  gid_t groups[NGROUPS_MAX];
  size_t ngroups = p->ngroups < NGROUPS_MAX ? p->ngroups : NGROUPS_MAX;
  for (size_t i = 0; i < ngroups; i++)
    groups[i] = p->groups[i];
  /* setgroups is denied in a user namespace whose gid_map was written
   * with setgroups=deny; an empty list there is already what we want. */
  if (setgroups (ngroups, groups) < 0 && !(errno == EPERM && ngroups == 0))
    die (errno, "setgroups", "%zu additional groups", ngroups);
  TRACE ("identity", "setgroups", "setgroups(%zu groups): only the groups the config names", ngroups);
  if (setresgid (p->gid, p->gid, p->gid) < 0)
    die (errno, "setresgid", "gid %ld", (long) p->gid);
  TRACE ("identity", "setgid", "setresgid(%ld, %ld, %ld)", (long) p->gid, (long) p->gid, (long) p->gid);
  if (setresuid (p->uid, p->uid, p->uid) < 0)
    die (errno, "setresuid", "uid %ld", (long) p->uid);
  TRACE ("identity", "setuid", "setresuid(%ld, %ld, %ld)", (long) p->uid, (long) p->uid, (long) p->uid);
  if (prctl (PR_SET_KEEPCAPS, 0, 0, 0, 0) < 0)
    die (errno, "capabilities", "PR_SET_KEEPCAPS");

  if (p->cap_permitted != CAP_UNSET || p->cap_effective != CAP_UNSET || p->cap_inheritable != CAP_UNSET)
    {
      uint64_t perm = p->cap_permitted == CAP_UNSET ? 0 : p->cap_permitted;
      uint64_t eff = p->cap_effective == CAP_UNSET ? 0 : p->cap_effective;
      uint64_t inh = p->cap_inheritable == CAP_UNSET ? 0 : p->cap_inheritable;
      if (capset_v3 (eff, perm, inh) < 0)
        die (errno, "capabilities", "capset effective %#llx permitted %#llx inheritable %#llx",
             (unsigned long long) eff, (unsigned long long) perm, (unsigned long long) inh);
      TRACE ("capabilities", "capset", "capset(effective %s, permitted %s, inheritable %s)", trace_caps (eff),
             trace_caps (perm), trace_caps (inh));
    }
  if (p->cap_ambient != CAP_UNSET)
    {
      if (prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0) < 0 && errno != EINVAL)
        die (errno, "capabilities", "clear the ambient set");
      for (int cap = 0; cap < 64; cap++)
        if ((p->cap_ambient & (1ULL << cap))
            && prctl (PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, cap, 0, 0) < 0)
          die (errno, "capabilities", "raise %d in the ambient set (it must be permitted and inheritable)", cap);
      TRACE ("capabilities", "ambient", "prctl(PR_CAP_AMBIENT_RAISE) of %s", trace_caps (p->cap_ambient));
    }
  TRACE ("capabilities", "caps_after", "capget + PR_CAPBSET_READ: %s", caps_now ());
  if (p->no_new_privs && prctl (PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
    die (errno, "no_new_privs", "PR_SET_NO_NEW_PRIVS");
  if (p->no_new_privs)
    TRACE ("no_new_privs", "no_new_privs", "prctl(PR_SET_NO_NEW_PRIVS, 1)");
}

/* chdir(2) into process.cwd and check where that is.  Done first while
 * husk-init is still root and before the user's seccomp filter, which may
 * deny getcwd (runtime-tools' linux_seccomp does).  A cwd that root may
 * not enter but the container's user may (EACCES/EPERM: a root-squashed
 * volume) is left for a second call AS_USER after the identity is set, as
 * runc does; then returns false.  */
bool
enter_cwd (struct plan *p, bool as_user)
{
  char buf[PATH_MAX];
  const char *cwd = p->cwd && *p->cwd ? p->cwd : "/";
  if (chdir (cwd) < 0)
    {
      if (!as_user && (errno == EACCES || errno == EPERM))
        return false;
      die (errno, "chdir", "process.cwd %s", cwd);
    }
  /* A cwd reached through a leaked host fd (/proc/self/fd/N) lies outside
   * our root: getcwd then fails with ENOENT or is not absolute. */
  errno = 0;
  if (getcwd (buf, sizeof buf) == NULL || buf[0] != '/')
    die (errno ? errno : EPERM, "chdir", "process.cwd %s is outside the container's root", cwd);
  TRACE ("process", "cwd", "chdir(\"%s\") + getcwd() = \"%s\": inside the container's root", cwd, buf);
  return true;
}

static const char *
env_path (struct plan *p)
{
  for (size_t i = 0; i < p->nenv; i++)
    if (strncmp (p->env[i], "PATH=", 5) == 0)
      return p->env[i] + 5;
  return "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
}

static int
is_executable (const char *path)
{
  struct stat st;
  return stat (path, &st) == 0 && S_ISREG (st.st_mode) && access (path, X_OK) == 0;
}

const char *
find_executable (struct plan *p, char *buf, size_t size)
{
  const char *name = p->args[0];
  if (strchr (name, '/'))
    {
      struct stat st;
      if (stat (name, &st) < 0)
        die (errno, "exec", "%s", name);
      if (!S_ISREG (st.st_mode) || access (name, X_OK) < 0)
        die (EACCES, "exec", "%s", name);
      return name;
    }
  const char *path = env_path (p);
  while (*path)
    {
      const char *end = strchrnul (path, ':');
      int n = snprintf (buf, size, "%.*s/%s", (int) (end - path), end == path ? "." : path, name);
      if (n > 0 && (size_t) n < size && is_executable (buf))
        return buf;
      path = *end ? end + 1 : end;
    }
  die (ENOENT, "exec", "\"%s\": executable file not found in $PATH", name);
}

/* Hooks run by husk-init (createContainer, startContainer: inside the
 * container's namespaces).  The contract is the one runtime/core/oci/hooks.py
 * keeps for the runtime-side hooks, so a hook behaves the same wherever it
 * runs: argv from args (or the path alone), env from env (else empty), the
 * state JSON on stdin, stdout to stderr (a hook's chatter is not the
 * container's output), the timeout enforced with SIGKILL, and a failure
 * reported as "<kind> hook: <path>: <why>" - the errno of an exec that
 * failed, "exit status N" or "killed by signal N" (no errno), "timed out
 * after N s". */
void
run_hooks (struct plan *p, int kind, const char *state, size_t state_len)
{
  const char *what = kind == HUSK_HOOK_CREATE_CONTAINER ? "createContainer hook" : "startContainer hook";
  for (size_t i = 0; i < p->nhooks; i++)
    {
      struct hook *h = &p->hooks[i];
      int in[2], failed[2], status;
      if (h->kind != kind)
        continue;
      /* failed[]: CLOEXEC, so the parent reads EOF when execve worked and
       * the child's errno when it did not. */
      if (pipe2 (in, O_CLOEXEC) < 0 || pipe2 (failed, O_CLOEXEC) < 0)
        die (errno, what, "%s: pipe", h->path);
      TRACE ("hooks", "hook", "fork + execve(\"%s\"): the %s, in the container's namespaces", h->path, what);
      pid_t pid = fork ();
      if (pid < 0)
        die (errno, what, "%s: fork", h->path);
      if (pid == 0)
        {
          char *none[] = { NULL };
          dup2 (in[0], 0);
          dup2 (2, 1);
          execve (h->path, h->args ? h->args : (char *[]){ h->path, NULL }, h->env ? h->env : none);
          int err = errno;
          write_all (failed[1], &err, sizeof err);
          _exit (127);
        }
      close (in[0]);
      close (failed[1]);
      int exec_errno = 0;
      ssize_t got;
      do
        got = read (failed[0], &exec_errno, sizeof exec_errno);
      while (got < 0 && errno == EINTR);
      close (failed[0]);
      if (got == sizeof exec_errno)
        {
          close (in[1]);
          waitpid (pid, NULL, 0);
          die (exec_errno, what, "%s", h->path);
        }
      signal (SIGPIPE, SIG_IGN);
      write_all (in[1], state, state_len);
      close (in[1]);

      /* Wait with the hook's timeout, via a pidfd we can poll. */
      cleanup_close int pidfd = syscall (SYS_pidfd_open, pid, 0);
      if (pidfd >= 0 && h->timeout > 0)
        {
          struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
          int r;
          do
            r = poll (&pfd, 1, h->timeout * 1000);
          while (r < 0 && errno == EINTR);
          if (r == 0)
            {
              kill (pid, SIGKILL);
              waitpid (pid, NULL, 0);
              die (0, what, "%s: timed out after %ld s", h->path, (long) h->timeout);
            }
        }
      while (waitpid (pid, &status, 0) < 0)
        if (errno != EINTR)
          die (errno, what, "%s: wait", h->path);
      if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
        die (0, what, "%s: %s %d", h->path, WIFEXITED (status) ? "exit status" : "killed by signal",
             WIFEXITED (status) ? WEXITSTATUS (status) : WTERMSIG (status));
    }
}

/* hooks.c - the hooks that run in the runtime's namespace: prestart,
 * createRuntime, poststart and poststop (createContainer and
 * startContainer run inside the container: husk-init's, in
 * native/src/process.c).
 *
 * The runtime-spec's contract: argv is args (or the path alone), the
 * environment is env (else empty), the state JSON is on stdin, the
 * timeout is enforced.  Our own: the hook's stdout goes to our stderr
 * (stdout may be a client's pipe it reads the container's output from),
 * and a failure reads "<kind> hook: <path>: <why>": the errno of an exec
 * that failed, "exit status N", "killed by signal N", "timed out after N s".
 * SPDX-License-Identifier: GPL-3.0-or-later */
#define _GNU_SOURCE
#include "front.h"
#include "trace.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char **
string_list (json_t *list, const char *first)
{
  size_t n = json_array_size (list);
  char **out = calloc (n + 2, sizeof *out);
  if (out == NULL)
    return NULL;
  size_t i = 0;
  for (; i < n; i++)
    out[i] = (char *) json_string_value (json_array_get (list, i));
  if (n == 0 && first)
    out[i++] = (char *) first;
  out[i] = NULL;
  return out;
}

static long long
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* One hook; NULL, or why it failed. */
static const char *
run_one (json_t *hook, const char *payload)
{
  static char why[256];
  const char *path = json_string_value (json_object_get (hook, "path"));
  long long timeout = json_integer_value (json_object_get (hook, "timeout"));
  char **argv = string_list (json_object_get (hook, "args"), path);
  char **envp = string_list (json_object_get (hook, "env"), NULL);
  int in[2], report_exec[2];
  if (path == NULL || argv == NULL || envp == NULL || pipe2 (in, O_CLOEXEC) < 0
      || pipe2 (report_exec, O_CLOEXEC) < 0)
    return strerror (errno ? errno : ENOMEM);
  pid_t pid = fork ();
  if (pid < 0)
    return strerror (errno);
  if (pid == 0)
    {
      /* stdin: the state; stdout: our stderr; nothing else of ours. */
      if (dup2 (in[0], 0) < 0 || dup2 (2, 1) < 0)
        _exit (127);
      close_range (3, ~0U, CLOSE_RANGE_CLOEXEC);
      sigset_t none;
      sigemptyset (&none);
      sigprocmask (SIG_SETMASK, &none, NULL);
      execve (path, argv, envp);
      int err = errno;
      if (write (report_exec[1], &err, sizeof err) < 0)
        _exit (127);
      _exit (127);
    }
  free (argv);
  free (envp);
  close (in[0]);
  close (report_exec[1]);
  /* The state is small: a pipe's buffer takes it without blocking,
   * whatever the hook does with its stdin. */
  signal (SIGPIPE, SIG_IGN);
  if (write (in[1], payload, strlen (payload)) < 0 && errno != EPIPE)
    {
      close (in[1]);
      return strerror (errno);
    }
  close (in[1]);
  int err = 0;
  bool exec_failed = read (report_exec[0], &err, sizeof err) == sizeof err;
  close (report_exec[0]);
  int pidfd = syscall (SYS_pidfd_open, pid, 0);
  long long deadline = timeout > 0 ? now_ms () + timeout * 1000 : -1;
  bool timed_out = false;
  for (;;)
    {
      int wait_ms = deadline < 0 ? -1 : (int) (deadline - now_ms () > 0 ? deadline - now_ms () : 0);
      struct pollfd p = { .fd = pidfd, .events = POLLIN };
      int n = pidfd >= 0 ? poll (&p, 1, wait_ms) : 1;
      if (n < 0 && errno == EINTR)
        continue;
      if (n == 0)
        {
          timed_out = true;
          kill (pid, SIGKILL);
        }
      break;
    }
  if (pidfd >= 0)
    close (pidfd);
  int status = 0;
  while (waitpid (pid, &status, 0) < 0 && errno == EINTR)
    ;
  if (exec_failed)
    return strerror (err);
  if (timed_out)
    snprintf (why, sizeof why, "timed out after %lld s", timeout);
  else if (WIFEXITED (status) && WEXITSTATUS (status) != 0)
    snprintf (why, sizeof why, "exit status %d", WEXITSTATUS (status));
  else if (WIFSIGNALED (status))
    snprintf (why, sizeof why, "killed by signal %d", WTERMSIG (status));
  else
    return NULL;
  return why;
}

const char *
run_hooks (const char *kind, json_t *hooks, json_t *state, bool fatal)
{
  static char failure[PATH_MAX + 512];
  if (json_array_size (hooks) == 0)
    return NULL;
  char *payload = json_dumps (state, JSON_COMPACT);
  if (payload == NULL)
    return "out of memory";
  for (size_t i = 0; i < json_array_size (hooks); i++)
    {
      json_t *hook = json_array_get (hooks, i);
      TRACE ("hooks", "hook", "fork + execve(\"%s\"): the %s hook, in the host's namespaces",
             json_string_value (json_object_get (hook, "path")) ?: "?", kind);
      const char *why = run_one (hook, payload);
      if (why == NULL)
        continue;
      const char *path = json_string_value (json_object_get (hook, "path"));
      if (fatal)
        {
          snprintf (failure, sizeof failure, "%s hook: %s: %s", kind, path ?: "?", why);
          free (payload);
          return failure;
        }
      report_warning_f ("%s hook %s: %s", kind, path ?: "?", why);
    }
  free (payload);
  return NULL;
}

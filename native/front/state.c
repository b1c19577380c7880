/* state.c - a container's state directory, and the verbs that only read
 * or change it: state, start, kill, delete.
 *
 * The same files and rules as runtime/oci/state.py: <root>/<id>/state.json
 * (temp file + rename), <root>/<id>/exec.fifo until start, flock(2) on
 * the directory for the whole command, and a status derived from the pid
 * and its start time (field 22 of /proc/PID/stat), never stored.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#define _GNU_SOURCE
#include "front.h"
#include "husk_proto.h"
#include "opts.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>

static bool
is_dir (const char *path)
{
  struct stat st;
  return stat (path, &st) == 0 && S_ISDIR (st.st_mode);
}

bool
ctr_open (struct ctr *c, const char *id)
{
  if (!valid_id (id))
    python ();
  c->id = id;
  c->data = NULL;
  snprintf (c->dir, sizeof c->dir, "%s/%s", g.root, id);
  snprintf (c->fifo, sizeof c->fifo, "%s/exec.fifo", c->dir);
  c->lock = open (c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (c->lock < 0)
    {
      if (errno == ENOENT)
        return false;
      python ();
    }
  if (flock (c->lock, LOCK_EX) < 0)
    python ();
  if (!is_dir (c->dir)) /* deleted while we waited for the lock */
    {
      ctr_close (c);
      return false;
    }
  char path[PATH_MAX + 16];
  snprintf (path, sizeof path, "%s/state.json", c->dir);
  json_error_t err;
  c->data = json_load_file (path, 0, &err);
  /* No state (a create that died early) or a foreign one: Python's rules. */
  if (c->data == NULL || !json_is_object (c->data) || !json_is_object (json_object_get (c->data, "husk")))
    python ();
  return true;
}

void
ctr_close (struct ctr *c)
{
  if (c->lock >= 0)
    close (c->lock);
  c->lock = -1;
  json_decref (c->data);
  c->data = NULL;
}

void
ctr_save (struct ctr *c)
{
  char tmp[PATH_MAX + 32], path[PATH_MAX + 16];
  snprintf (tmp, sizeof tmp, "%s/.state.json.tmp", c->dir);
  snprintf (path, sizeof path, "%s/state.json", c->dir);
  if (json_dump_file (c->data, tmp, JSON_COMPACT) < 0 || rename (tmp, path) < 0)
    fail ("state: write %s: %s", path, strerror (errno));
}

/* shutil.rmtree of the few files a state directory holds. */
void
ctr_remove (struct ctr *c)
{
  DIR *d = opendir (c->dir);
  if (d)
    {
      struct dirent *e;
      while ((e = readdir (d)) != NULL)
        if (strcmp (e->d_name, ".") != 0 && strcmp (e->d_name, "..") != 0)
          unlinkat (dirfd (d), e->d_name, 0);
      closedir (d);
    }
  rmdir (c->dir);
  ctr_close (c);
}

json_t *
husk_field (struct ctr *c, const char *name)
{
  return json_object_get (json_object_get (c->data, "husk"), name);
}

long long
ctr_pid (struct ctr *c)
{
  return json_integer_value (json_object_get (c->data, "pid"));
}

long long
process_start_time (pid_t pid)
{
  char path[64];
  snprintf (path, sizeof path, "/proc/%d/stat", pid);
  char *data = read_small (path, NULL, 1 << 16);
  if (data == NULL)
    return -1;
  char *p = strrchr (data, ')');
  long long start = -1;
  if (p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X')
    {
      p += 2; /* fields from 3 (state) on; the start time is field 22 */
      for (int field = 3; field < 22 && p; field++)
        {
          p = strchr (p, ' ');
          if (p)
            p++;
        }
      if (p)
        start = strtoll (p, NULL, 10);
    }
  free (data);
  return start;
}

static bool
alive (struct ctr *c)
{
  long long pid = ctr_pid (c);
  json_t *start = husk_field (c, "start_time");
  return pid > 0 && json_is_integer (start) && process_start_time (pid) == json_integer_value (start);
}

const char *
ctr_status (struct ctr *c)
{
  if (!alive (c))
    return "stopped";
  if (access (c->fifo, F_OK) == 0)
    return "created";
  if (json_is_true (husk_field (c, "paused")))
    return "paused";
  return "running";
}

json_t *
ctr_oci_state (struct ctr *c, const char *status)
{
  json_t *v = json_object_get (c->data, "ociVersion");
  json_t *bundle = json_object_get (c->data, "bundle");
  json_t *ann = json_object_get (c->data, "annotations");
  return json_pack ("{s:s, s:s, s:s, s:I, s:s, s:O}", "ociVersion", json_is_string (v) ? json_string_value (v) : "1.2.0",
                    "id", c->id, "status", status, "pid", strcmp (status, "stopped") ? ctr_pid (c) : 0, "bundle",
                    json_is_string (bundle) ? json_string_value (bundle) : "", "annotations",
                    json_is_object (ann) ? ann : json_object ());
}

static bool
no_hooks (struct ctr *c, const char *kind)
{
  json_t *hooks = json_object_get (husk_field (c, "hooks"), kind);
  return hooks == NULL || (json_is_array (hooks) && json_array_size (hooks) == 0);
}

/* state ID: a stopped container's state may carry the OOM killer's
 * annotation, read from its cgroup: that one is Python's. */
void
verb_state (int argc, char **argv)
{
  const char *id = one_id (argc, argv, NULL);
  struct ctr c;
  if (!ctr_open (&c, id))
    python ();
  const char *status = ctr_status (&c);
  if (strcmp (status, "stopped") == 0)
    python ();
  json_t *out = ctr_oci_state (&c, status);
  char *text = json_dumps (out, JSON_INDENT (2));
  if (text == NULL)
    python ();
  puts (text);
  exit (fflush (stdout) == 0 ? 0 : 1);
}

static int
pidfd_open (pid_t pid)
{
  return syscall (SYS_pidfd_open, pid, 0);
}

/* What husk-init sent through the exec fifo after the byte it writes on
 * opening it: nothing (execve happened), or the MSG_ERROR record of its
 * die() (util.c), as one line; *code is the exit code it maps to. */
static const char *
exec_failure (const char *received, size_t got, int *code)
{
  static char error[4200];
  while (got && *received == '\0')
    received++, got--;
  if (got == 0)
    return NULL;
  uint32_t head[2];
  const struct husk_record_info *info = husk_record_info (MSG_ERROR);
  if (got >= sizeof head)
    {
      memcpy (head, received, sizeof head);
      const char *value = received + sizeof head;
      if (head[0] == MSG_ERROR && head[1] <= got - sizeof head && !husk_record_problem (info, value, head[1]))
        {
          int32_t err;
          memcpy (&err, value, sizeof err);
          const char *step = value + sizeof err, *detail = step + strlen (step) + 1;
          snprintf (error, sizeof error, "start: %s: %.*s: %s", step, (int) (value + head[1] - detail), detail,
                    strcmp (step, "exec") == 0 ? exec_errno_text (err) : strerror (err));
          *code = exit_code_of_exec (err);
          return error;
        }
    }
  snprintf (error, sizeof error, "start: husk-init sent %zu bytes that are not an error record", got);
  return error;
}

/* Open the exec fifo: the process waiting on it goes on to execve.
 * Returns once it has exec'd (its CLOEXEC end of the fifo closed), NULL;
 * or the error line, with *code the exit code for it (container._release
 * is the same in Python). */
const char *
release (struct ctr *c, int *code)
{
  *code = 1;
  static char error[4200];
  int fifo = open (c->fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fifo < 0)
    python ();
  int pidfd = pidfd_open (ctr_pid (c));
  if (pidfd < 0)
    python ();
  char received[4096];
  size_t got = 0;
  bool opened = false;
  struct pollfd fds[2] = { { .fd = fifo, .events = POLLIN }, { .fd = pidfd, .events = POLLIN } };
  for (;;)
    {
      if (poll (fds, 2, -1) < 0)
        {
          if (errno == EINTR)
            continue;
          fail ("start: poll: %s", strerror (errno));
        }
      if (fds[0].revents)
        {
          char buf[4096];
          ssize_t n = read (fifo, buf, sizeof buf);
          if (n < 0 && (errno == EAGAIN || errno == EINTR))
            continue;
          if (n > 0)
            {
              opened = true;
              size_t take = (size_t) n < sizeof received - 1 - got ? (size_t) n : sizeof received - 1 - got;
              memcpy (received + got, buf, take);
              got += take;
              continue;
            }
          if (opened)
            break; /* every writer is gone: execve happened, or it failed */
        }
      if (fds[1].revents && !opened)
        {
          close (fifo);
          close (pidfd);
          unlink (c->fifo);
          snprintf (error, sizeof error, "start: container '%s' exited before it was started", c->id);
          return error;
        }
      if (fds[0].revents & POLLHUP && !opened)
        {
          /* No writer yet: POLLHUP would spin; wait for one briefly. */
          struct timespec ms = { 0, 1000000 };
          nanosleep (&ms, NULL);
        }
    }
  close (fifo);
  close (pidfd);
  unlink (c->fifo);
  return exec_failure (received, got, code);
}

void
verb_start (int argc, char **argv)
{
  const char *id = one_id (argc, argv, NULL);
  struct ctr c;
  if (!ctr_open (&c, id) || strcmp (ctr_status (&c), "created") != 0 || !no_hooks (&c, "poststart"))
    python ();
  int code;
  const char *err = release (&c, &code);
  if (err)
    fail_with (code, "%s", err);
  json_object_set_new (c.data, "status", json_string ("running"));
  ctr_save (&c);
  exit (0);
}

/* kill(1) and runc's names: KILL, SIGKILL, kill, 9.  Anything rarer
 * (RTMIN+3) is parsed by Python. */
static int
parse_signal (const char *text)
{
  static const struct
  {
    const char *name;
    int number;
  } names[] = {
    { "HUP", SIGHUP },   { "INT", SIGINT },       { "QUIT", SIGQUIT }, { "ILL", SIGILL },     { "TRAP", SIGTRAP },
    { "ABRT", SIGABRT }, { "IOT", SIGIOT },       { "BUS", SIGBUS },   { "FPE", SIGFPE },     { "KILL", SIGKILL },
    { "USR1", SIGUSR1 }, { "SEGV", SIGSEGV },     { "USR2", SIGUSR2 }, { "PIPE", SIGPIPE },   { "ALRM", SIGALRM },
    { "TERM", SIGTERM }, { "STKFLT", SIGSTKFLT }, { "CHLD", SIGCHLD }, { "CONT", SIGCONT },   { "STOP", SIGSTOP },
    { "TSTP", SIGTSTP }, { "TTIN", SIGTTIN },     { "TTOU", SIGTTOU }, { "URG", SIGURG },     { "XCPU", SIGXCPU },
    { "XFSZ", SIGXFSZ }, { "VTALRM", SIGVTALRM }, { "PROF", SIGPROF }, { "WINCH", SIGWINCH }, { "IO", SIGIO },
    { "POLL", SIGPOLL }, { "PWR", SIGPWR },       { "SYS", SIGSYS },
  };
  if (text[0] >= '0' && text[0] <= '9' && strspn (text, "0123456789") == strlen (text) && strlen (text) < 4)
    {
      int n = atoi (text);
      return n > 0 && n < NSIG ? n : -1;
    }
  const char *name = strncasecmp (text, "SIG", 3) == 0 ? text + 3 : text;
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcasecmp (name, names[i].name) == 0)
      return names[i].number;
  return -1;
}

void
verb_kill (int argc, char **argv)
{
  /* runc's form names the signal: `kill ID SIGNAL`, as podman, containerd
   * and Docker send it.  `kill NAME` is docker's form (runtime/cli/kill.py),
   * and --all is Python's. */
  const char *positional[2] = { NULL, NULL };
  if (positionals (argc, argv, positional, 2, NULL) != 2)
    python ();
  int sig = parse_signal (positional[1]);
  struct ctr c;
  if (sig < 0 || !ctr_open (&c, positional[0]) || strcmp (ctr_status (&c), "stopped") == 0)
    python ();
  /* A pidfd pins the process: the signal cannot reach a recycled pid. */
  int pidfd = pidfd_open (ctr_pid (&c));
  if (pidfd < 0 || !alive (&c) || syscall (SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
    python ();
  exit (0);
}

/* Whether any process is left in dir (a cgroup directory). */
static bool
cgroup_empty (const char *dir)
{
  char path[PATH_MAX + 16];
  snprintf (path, sizeof path, "%s/cgroup.procs", dir);
  char *procs = read_small (path, NULL, 1 << 20);
  bool empty = procs == NULL ? errno == ENOENT : procs[strspn (procs, " \n")] == '\0';
  free (procs);
  return empty;
}

static int
by_length_desc (const void *a, const void *b)
{
  size_t la = strlen (*(const char *const *) a), lb = strlen (*(const char *const *) b);
  return la < lb ? 1 : la > lb ? -1 : 0;
}

static bool
json_array_has (json_t *array, const char *text)
{
  for (size_t i = 0; i < json_array_size (array); i++)
    if (text && strcmp (json_string_value (json_array_get (array, i)) ?: "", text) == 0)
      return true;
  return false;
}

/* Remove the cgroup directories husk made, deepest first (the
 * CgroupManager.destroy of a container with no process left).  The
 * container's own (OWN) are retried while its exited tasks linger
 * (EBUSY); a parent it happened to make first (docker's /docker, a pod's)
 * is shared, and removed only if it is empty now: one try. */
void
remove_cgroups (json_t *created, json_t *own)
{
  size_t n = json_array_size (created);
  const char **dirs = calloc (n + 1, sizeof *dirs);
  if (dirs == NULL)
    return;
  for (size_t i = 0; i < n; i++)
    dirs[i] = json_string_value (json_array_get (created, i));
  qsort (dirs, n, sizeof *dirs, by_length_desc);
  for (size_t i = 0; i < n; i++)
    {
      int tries = json_array_has (own, dirs[i]) ? 500 : 1;
      while (dirs[i] && tries-- > 0 && rmdir (dirs[i]) < 0 && errno == EBUSY && tries > 0)
        {
          struct timespec ms = { 0, 2000000 }; /* exited tasks linger for a moment */
          nanosleep (&ms, NULL);
        }
    }
  free (dirs);
}

bool
delete_stopped (struct ctr *c)
{
  json_t *created = husk_field (c, "cgroup_created");
  json_t *dirs = husk_field (c, "cgroup_dirs");
  if (!no_hooks (c, "poststop") || !json_is_array (dirs) || (created && !json_is_array (created)))
    return false;
  /* Processes left in a cgroup husk made (the init died, its children did
   * not, or are still exiting): give them a moment, then let Python kill
   * them, freezer and all. */
  bool owned = json_array_size (dirs) > 0;
  for (size_t i = 0; i < json_array_size (dirs); i++)
    {
      bool mine = false;
      for (size_t j = 0; j < json_array_size (created); j++)
        mine |= json_equal (json_array_get (dirs, i), json_array_get (created, j));
      owned &= mine;
    }
  for (size_t i = 0; owned && i < json_array_size (dirs); i++)
    {
      const char *d = json_string_value (json_array_get (dirs, i));
      int tries = 0;
      while (d && !cgroup_empty (d) && tries++ < 50)
        {
          struct timespec ms = { 0, 2000000 };
          nanosleep (&ms, NULL);
        }
      if (d && !cgroup_empty (d))
        return false;
    }
  remove_cgroups (created, dirs);
  ctr_remove (c);
  return true;
}

void
verb_delete (int argc, char **argv)
{
  bool force = false;
  struct opt opts[] = { { "--force", 'f', NULL, &force }, { NULL, 0, NULL, NULL } };
  const char *id = one_id (argc, argv, opts);
  struct ctr c;
  if (!ctr_open (&c, id))
    {
      if (force && valid_id (id))
        exit (0); /* containerd's cleanup deletes twice */
      python ();
    }
  if (strcmp (ctr_status (&c), "stopped") != 0 || !delete_stopped (&c))
    python ();
  exit (0);
}

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
#include "sdbus.h"
#include "trace.h"

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
  c->config = NULL;
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
  /* No state: a create that died before writing any reads as "creating"
   * with no pid (so: stopped), as in state.py.  A foreign one: Python's. */
  if (c->data == NULL && access (path, F_OK) < 0 && errno == ENOENT)
    c->data = json_pack ("{s:s, s:i, s:{}}", "status", "creating", "pid", 0, "husk");
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

/* The container's init has exec'd: say so, then run the poststart
 * hooks (the process may have exited meanwhile; they are told about the
 * start they follow, and a failure is only a warning). */
void
started (struct ctr *c)
{
  json_object_set_new (c->data, "status", json_string ("running"));
  ctr_save (c);
  json_t *hooks = json_object_get (husk_field (c, "hooks"), "poststart");
  if (json_array_size (hooks))
    {
      json_t *state = ctr_oci_state (c, "running");
      run_hooks ("poststart", hooks, state, false);
      json_decref (state);
    }
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
  TRACE ("process", "start", "open(\"%s\", O_RDONLY) + read until every writer is gone: the init went on to execve",
         c->fifo);
  return exec_failure (received, got, code);
}

void
verb_start (int argc, char **argv)
{
  const char *id = one_id (argc, argv, NULL);
  struct ctr c;
  if (!ctr_open (&c, id) || strcmp (ctr_status (&c), "created") != 0)
    python ();
  int code;
  const char *err = release (&c, &code);
  if (err)
    fail_with (code, "%s", err);
  started (&c);
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
  /* The real-time signals: RTMIN, RTMIN+N, RTMAX-N, RTMAX. */
  bool min = strncasecmp (name, "RTMIN", 5) == 0, max = strncasecmp (name, "RTMAX", 5) == 0;
  if (min || max)
    {
      const char *rest = name + 5;
      int offset = 0;
      if (*rest)
        {
          if (*rest != (min ? '+' : '-') || strspn (rest + 1, "0123456789") != strlen (rest + 1)
              || strlen (rest + 1) == 0 || strlen (rest + 1) > 2)
            return -1;
          offset = atoi (rest + 1);
        }
      int n = min ? SIGRTMIN + offset : SIGRTMAX - offset;
      return n >= SIGRTMIN && n <= SIGRTMAX ? n : -1;
    }
  return -1;
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

/* ---- the container's cgroup -------------------------------------- */

/* The first of the container's cgroup directories that has FILE: which
 * hierarchy serves what (a v1 controller's own files, or the cgroup2
 * directory's cgroup.controllers) is read off the kernel, as
 * CgroupManager.dir_of does from the layout. */
static const char *
dir_with (json_t *dirs, const char *file)
{
  for (size_t i = 0; i < json_array_size (dirs); i++)
    {
      const char *d = json_string_value (json_array_get (dirs, i));
      char path[PATH_MAX + 64];
      snprintf (path, sizeof path, "%s/%s", d ?: "", file);
      if (d && access (path, F_OK) == 0)
        return d;
    }
  return NULL;
}

/* Pure cgroup v2: the one directory is the unified hierarchy's. */
static bool
v2_only (json_t *dirs)
{
  return json_array_size (dirs) == 1 && dir_with (dirs, "cgroup.controllers") != NULL;
}

/* husk made every one of the container's cgroup directories: whatever is
 * in them is the container's.  A cgroupsPath may name an existing cgroup
 * with other processes in it: those are not the container's to kill. */
static bool
owned (struct ctr *c)
{
  json_t *dirs = husk_field (c, "cgroup_dirs"), *created = husk_field (c, "cgroup_created");
  if (json_array_size (dirs) == 0)
    return false;
  if (json_is_string (husk_field (c, "systemd_unit")))
    return true; /* the unit systemd made for it alone */
  for (size_t i = 0; i < json_array_size (dirs); i++)
    if (!json_array_has (created, json_string_value (json_array_get (dirs, i))))
      return false;
  return true;
}

/* The pids in the container's cgroup (of the pids controller's hierarchy,
 * else the cgroup2 one, else the first); *n of them, malloc'd. */
static pid_t *
cgroup_pids (json_t *dirs, size_t *n)
{
  const char *d = dir_with (dirs, "pids.max") ?: dir_with (dirs, "cgroup.controllers");
  if (d == NULL)
    d = json_string_value (json_array_get (dirs, 0));
  *n = 0;
  if (d == NULL)
    return NULL;
  char path[PATH_MAX + 16];
  snprintf (path, sizeof path, "%s/cgroup.procs", d);
  char *text = read_small (path, NULL, 1 << 22);
  if (text == NULL)
    return NULL;
  size_t cap = 16;
  pid_t *pids = malloc (cap * sizeof *pids);
  for (char *save, *line = strtok_r (text, "\n", &save); pids && line; line = strtok_r (NULL, "\n", &save))
    {
      if (*n == cap)
        pids = realloc (pids, (cap *= 2) * sizeof *pids);
      if (pids)
        pids[(*n)++] = atoi (line);
    }
  free (text);
  return pids;
}

static bool
frozen_v1 (const char *freezer)
{
  char path[PATH_MAX + 16];
  snprintf (path, sizeof path, "%s/freezer.state", freezer);
  char *state = read_small (path, NULL, 64);
  bool frozen = state && strncmp (state, "FROZEN", 6) == 0;
  free (state);
  return frozen;
}

/* v1's freezer, and the wait until every task has settled (it takes
 * effect task by task). */
static void
set_frozen_v1 (const char *freezer, bool frozen)
{
  char path[PATH_MAX + 16];
  snprintf (path, sizeof path, "%s/freezer.state", freezer);
  write_text (path, frozen ? "FROZEN" : "THAWED");
  for (int i = 0; i < 5000 && frozen_v1 (freezer) != frozen; i++)
    {
      struct timespec ms = { 0, 1000000 };
      nanosleep (&ms, NULL);
    }
}

/* SIG to every process in the container's cgroup.  cgroup.kill (v2,
 * Linux 5.14+) is atomic; on v1 the cgroup is frozen first, so nothing
 * forks between reading the list and the signals, and SIGKILL lands
 * when it thaws. */
static void
kill_all (json_t *dirs, int sig)
{
  bool v2 = v2_only (dirs);
  const char *unified = v2 ? json_string_value (json_array_get (dirs, 0)) : NULL;
  char path[PATH_MAX + 16];
  if (sig == SIGKILL && unified)
    {
      snprintf (path, sizeof path, "%s/cgroup.kill", unified);
      if (access (path, F_OK) == 0 && write_text (path, "1") == 0)
        return;
    }
  size_t n;
  pid_t *pids = cgroup_pids (dirs, &n);
  free (pids);
  if (n == 0)
    return;
  const char *freezer = sig == SIGKILL && !v2 ? dir_with (dirs, "freezer.state") : NULL;
  if (freezer && !frozen_v1 (freezer))
    set_frozen_v1 (freezer, true);
  pids = cgroup_pids (dirs, &n);
  for (size_t i = 0; i < n; i++)
    kill (pids[i], sig);
  free (pids);
  if (freezer)
    set_frozen_v1 (freezer, false);
}

/* The container's processes in a cgroup it does not own: those in its
 * own pid namespace, or just its init if it shares the host's. */
static void
kill_own (struct ctr *c, int sig)
{
  pid_t init = ctr_pid (c);
  if (!json_array_has (husk_field (c, "namespaces"), "pid"))
    {
      if (alive (c))
        kill (init, sig);
      return;
    }
  char path[64], ns[128], theirs[128];
  snprintf (path, sizeof path, "/proc/%d/ns/pid", init);
  ssize_t len = readlink (path, ns, sizeof ns - 1);
  if (len < 0)
    return;
  ns[len] = '\0';
  size_t n;
  pid_t *pids = cgroup_pids (husk_field (c, "cgroup_dirs"), &n);
  for (size_t i = 0; i < n; i++)
    {
      snprintf (path, sizeof path, "/proc/%d/ns/pid", pids[i]);
      len = readlink (path, theirs, sizeof theirs - 1);
      if (len >= 0 && (theirs[len] = '\0', strcmp (ns, theirs) == 0))
        kill (pids[i], sig);
    }
  free (pids);
}

void
verb_kill (int argc, char **argv)
{
  /* runc's form: `kill [--all] ID [SIGNAL]` with the signal given (as
   * podman, containerd and Docker send it) or --all.  `kill NAME` is
   * docker's form (runtime/cli/kill.py), and so is -s. */
  bool all = false;
  struct opt opts[] = { { "--all", 'a', NULL, &all }, { NULL, 0, NULL, NULL } };
  const char *positional[2] = { NULL, NULL };
  int n = positionals (argc, argv, positional, 2, opts);
  if (n < 1 || (n == 1 && !all))
    python ();
  int sig = parse_signal (positional[1] ?: "TERM");
  if (sig < 0)
    python (); /* Python names what is wrong with it */
  struct ctr c;
  if (!ctr_open (&c, positional[0]))
    python (); /* does not exist: Python's message */
  bool stopped = strcmp (ctr_status (&c), "stopped") == 0;
  if (all)
    {
      /* A stopped container's leftovers (a shared pid namespace's
       * children) go too, and that is success, as with runc. */
      if (owned (&c))
        kill_all (husk_field (&c, "cgroup_dirs"), sig);
      else if (!stopped)
        kill_own (&c, sig);
      exit (0);
    }
  /* A pidfd pins the process: the signal cannot reach a recycled pid.
   * containerd's shim reads "container not running" as "already gone". */
  int pidfd = stopped ? -1 : pidfd_open (ctr_pid (&c));
  if (pidfd < 0 || !alive (&c) || syscall (SYS_pidfd_send_signal, pidfd, sig, NULL, 0) < 0)
    fail ("kill: container not running (%s has stopped)", c.id);
  exit (0);
}

/* ---- delete ----------------------------------------------------- */

/* --systemd-cgroup: the container's unit is stopped and, if it failed
 * (its last process OOM-killed, say), reset, so systemd forgets it and a
 * new container may take its name.  systemd removes the unit's cgroup;
 * the directories husk made in hierarchies systemd does not manage are
 * removed after. */
static void
stop_unit (struct ctr *c)
{
  const char *unit = json_string_value (husk_field (c, "systemd_unit"));
  if (unit == NULL)
    return;
  struct husk_sd sd;
  if (husk_sd_connect (&sd) < 0 || husk_sd_stop_unit (&sd, unit) < 0)
    report_warning_f ("delete %s: %s", c->id, sd.error);
  husk_sd_close (&sd);
}

/* Kill what is left (if the cgroup is ours), then stop its unit, remove
 * the cgroup directories husk made, run the poststop hooks and remove
 * the state. */
void
ctr_delete (struct ctr *c)
{
  json_t *created = husk_field (c, "cgroup_created");
  json_t *dirs = husk_field (c, "cgroup_dirs");
  if (owned (c))
    for (int tries = 0; tries < 500; tries++)
      {
        kill_all (dirs, SIGKILL);
        size_t n;
        free (cgroup_pids (dirs, &n));
        if (n == 0)
          break;
        struct timespec ms = { 0, 2000000 }; /* exiting tasks leave the cgroup last */
        nanosleep (&ms, NULL);
      }
  TRACE ("cleanup", "kill", "kill(SIGKILL) of every process left in the container's cgroup");
  stop_unit (c);
  if (json_is_array (created))
    remove_cgroups (created, dirs);
  TRACE ("cleanup", "cgroup_rmdir", "rmdir of the %zu cgroup directories husk made", json_array_size (created));
  json_t *hooks = json_object_get (husk_field (c, "hooks"), "poststop");
  if (json_array_size (hooks))
    {
      json_t *state = ctr_oci_state (c, "stopped");
      run_hooks ("poststop", hooks, state, false);
      json_decref (state);
    }
  ctr_remove (c);
  TRACE ("cleanup", "state_removed", "rm -r %s: the container is gone", c->dir);
}

/* delete --force of a live container: every process of it is killed and
 * its init reaped by whoever waits for it (up to 10 s) before the rest. */
static void
kill_and_wait (struct ctr *c)
{
  if (owned (c))
    kill_all (husk_field (c, "cgroup_dirs"), SIGKILL);
  else
    kill_own (c, SIGKILL);
  int pidfd = pidfd_open (ctr_pid (c));
  if (pidfd < 0)
    return;
  if (alive (c))
    {
      syscall (SYS_pidfd_send_signal, pidfd, SIGKILL, NULL, 0);
      struct pollfd p = { .fd = pidfd, .events = POLLIN }; /* readable once it has exited */
      while (poll (&p, 1, 10000) < 0 && errno == EINTR)
        ;
    }
  close (pidfd);
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
  const char *status = ctr_status (&c);
  if (strcmp (status, "stopped") != 0)
    {
      if (!force)
        fail ("delete: container '%s' is %s: stop it or use --force", id, status);
      kill_and_wait (&c);
    }
  ctr_delete (&c);
  exit (0);
}

/* main.c - `husk`: global flags, the hot verbs, and the hand-over to Python.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#define _GNU_SOURCE
#include "front.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#ifndef HUSK_PYTHON
#error "HUSK_PYTHON (the interpreter) and HUSK_PURELIB (where runtime/ is installed) come from setup.py"
#endif

struct globals g = { .log_format = "text" };

/* The same start as the old sh launcher: -I -S skips site processing
 * (no .pth file runs first); site-packages is added by hand, and an
 * editable install falls back to full site processing. */
const char husk_entry[] = "import sys\n"
                            "sys.path.append(" HUSK_PURELIB_PY ")\n"
                            "try:\n"
                            "    from runtime.cli.main import main\n"
                            "except ImportError:\n"
                            "    import site\n"
                            "    site.main()\n"
                            "    from runtime.cli.main import main\n"
                            "main()\n";

void
python (void)
{
  char **argv = calloc (g.argc + 5, sizeof *argv);
  if (argv == NULL)
    {
      fprintf (stderr, "husk: out of memory\n");
      exit (1);
    }
  int n = 0;
  argv[n++] = (char *) HUSK_PYTHON;
  argv[n++] = (char *) "-I";
  argv[n++] = (char *) "-S";
  argv[n++] = (char *) "-c";
  argv[n++] = (char *) husk_entry;
  for (int i = 1; i < g.argc; i++)
    argv[n++] = g.argv[i];
  argv[n] = NULL;
  execv (HUSK_PYTHON, argv);
  fprintf (stderr, "husk: exec %s: %s\n", HUSK_PYTHON, strerror (errno));
  exit (1);
}

void
now_iso (char out[64])
{
  struct timespec ts;
  struct tm tm;
  clock_gettime (CLOCK_REALTIME, &ts);
  gmtime_r (&ts.tv_sec, &tm);
  size_t n = strftime (out, 64, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf (out + n, 64 - n, ".%06ldZ", ts.tv_nsec / 1000);
}

/* One line of --log, in its format. */
static void
log_line (const char *level, const char *msg)
{
  if (g.log == NULL)
    return;
  char now[64];
  now_iso (now);
  char *line = NULL;
  if (strcmp (g.log_format, "json") == 0)
    {
      json_t *o = json_pack ("{s:s, s:s, s:s}", "level", level, "msg", msg, "time", now);
      line = o ? json_dumps (o, JSON_COMPACT) : NULL;
      json_decref (o);
    }
  else if (asprintf (&line, "time=\"%s\" level=%s msg=\"%s\"", now, level, msg) < 0)
    line = NULL;
  int fd = open (g.log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd >= 0 && line)
    dprintf (fd, "%s\n", line);
  if (fd >= 0)
    close (fd);
  free (line);
}

/* As runtime/cli/main.py's report(): an error is one line to stderr,
 * and to --log as text or as the JSON lines containerd's shim reads
 * back; a warning goes to --log when there is one, else to stderr. */
static void
report_level (const char *level, const char *msg)
{
  bool error = strcmp (level, "error") == 0;
  /* The log first: a client that closed our stderr (a pipe no one
   * reads: SIGPIPE) still finds the error where it looks for it. */
  log_line (level, msg);
  if (error)
    fprintf (stderr, "husk: %s\n", msg);
  else if (g.log == NULL)
    fprintf (stderr, "husk: %s: %s\n", level, msg);
}

void
report (const char *msg)
{
  report_level ("error", msg);
}

void
report_warning_f (const char *fmt, ...)
{
  char msg[8192];
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (msg, sizeof msg, fmt, ap);
  va_end (ap);
  report_level ("warning", msg);
}

void
report_v (const char *fmt, va_list ap)
{
  char msg[8192];
  vsnprintf (msg, sizeof msg, fmt, ap);
  report (msg);
}

void
fail (const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  report_v (fmt, ap);
  va_end (ap);
  exit (1);
}

void
fail_with (int code, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  report_v (fmt, ap);
  va_end (ap);
  exit (code);
}

/* An execve error's text as runc (Go) writes it, in lower case: docker's
 * CLI and moby look for "permission denied" and "no such file or
 * directory" in it to exit 126 or 127 (runtime/core/errors.py's ExecError). */
const char *
exec_errno_text (int err)
{
  static char text[256];
  snprintf (text, sizeof text, "%s", strerror (err));
  text[0] = (char) tolower ((unsigned char) text[0]);
  return text;
}

int
exit_code_of_exec (int err)
{
  return err == ENOENT ? 127 : 126; /* not found : found but not runnable */
}

/* os.path.abspath: join with the cwd and fold ".", ".." and "//"
 * lexically (no symlink is resolved, as in Python). */
void
absolute_path (const char *path, char out[PATH_MAX])
{
  char joined[2 * PATH_MAX];
  if (path[0] == '/')
    snprintf (joined, sizeof joined, "%s", path);
  else
    {
      char cwd[PATH_MAX];
      if (getcwd (cwd, sizeof cwd) == NULL)
        python ();
      snprintf (joined, sizeof joined, "%s/%s", cwd, path);
    }
  size_t n = 0;
  char *save, *part;
  out[0] = '\0';
  for (part = strtok_r (joined, "/", &save); part; part = strtok_r (NULL, "/", &save))
    {
      if (strcmp (part, ".") == 0)
        continue;
      if (strcmp (part, "..") == 0)
        {
          while (n > 0 && out[n - 1] != '/')
            n--;
          if (n > 0)
            n--;
          out[n] = '\0';
          continue;
        }
      size_t len = strlen (part);
      if (n + 1 + len >= PATH_MAX)
        python ();
      out[n++] = '/';
      memcpy (out + n, part, len + 1);
      n += len;
    }
  if (n == 0)
    strcpy (out, "/");
}

/* runtime/oci/state.py's check_id: [A-Za-z0-9_+\-.]{1,1024}, not . or .. */
bool
valid_id (const char *id)
{
  size_t n = strlen (id);
  if (n == 0 || n > 1024 || strcmp (id, ".") == 0 || strcmp (id, "..") == 0)
    return false;
  return strspn (id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_+-.") == n;
}

char *
read_small (const char *path, size_t *len, size_t limit)
{
  int fd = open (path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0)
    return NULL;
  size_t cap = 4096, n = 0;
  char *buf = malloc (cap + 1);
  while (buf)
    {
      if (n == cap)
        {
          if (cap >= limit)
            {
              free (buf);
              buf = NULL;
              errno = EFBIG;
              break;
            }
          cap *= 2;
          char *more = realloc (buf, cap + 1);
          if (more == NULL)
            {
              free (buf);
              buf = NULL;
              break;
            }
          buf = more;
        }
      ssize_t r = read (fd, buf + n, cap - n);
      if (r < 0 && errno == EINTR)
        continue;
      if (r < 0)
        {
          free (buf);
          buf = NULL;
          break;
        }
      if (r == 0)
        {
          buf[n] = '\0';
          if (len)
            *len = n;
          break;
        }
      n += r;
    }
  int saved = errno;
  close (fd);
  errno = saved;
  return buf;
}

int
write_text (const char *path, const char *text)
{
  int fd = open (path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0)
    return -1;
  size_t len = strlen (text);
  ssize_t n = write (fd, text, len);
  int saved = errno;
  close (fd);
  if (n != (ssize_t) len)
    {
      errno = n < 0 ? saved : EIO;
      return -1;
    }
  return 0;
}

/* A global flag's value: "--flag VALUE" or "--flag=VALUE". */
static const char *
flag_value (const char *name, int argc, char **argv, int *i)
{
  size_t n = strlen (name);
  if (strncmp (argv[*i], name, n) != 0)
    return NULL;
  if (argv[*i][n] == '=')
    return argv[*i] + n + 1;
  if (argv[*i][n] == '\0' && *i + 1 < argc)
    return argv[++*i];
  return NULL;
}

int
main (int argc, char **argv)
{
  g.argc = argc;
  g.argv = argv;
  const char *root = "/run/husk";
  int i = 1;
  for (; i < argc && argv[i][0] == '-'; i++)
    {
      const char *v;
      if ((v = flag_value ("--root", argc, argv, &i)))
        root = v;
      else if ((v = flag_value ("--log-format", argc, argv, &i)))
        g.log_format = v;
      else if ((v = flag_value ("--log", argc, argv, &i)))
        g.log = v;
      else if ((v = flag_value ("--storage-root", argc, argv, &i)))
        ; /* images only: no hot verb needs it */
      else if (strcmp (argv[i], "--debug") == 0)
        g.debug = true; /* containerd's shim passes it when it logs at debug level */
      else if (strcmp (argv[i], "--systemd-cgroup") == 0)
        g.systemd_cgroup = true; /* create's; later verbs read the driver from the state */
      else
        python (); /* --help, --version, ... */
    }
  if (i >= argc || (strcmp (g.log_format, "text") != 0 && strcmp (g.log_format, "json") != 0)
      || access (HUSK_PURELIB "/runtime/_bin/husk-init", X_OK) != 0)
    python ();
  absolute_path (root, g.root);
  if (strlen (g.root) > PATH_MAX - 1100) /* room for an id (1024) and a file name */
    python ();

  trace_open (); /* --explain's steps, when Python asks for them (trace.c) */
  const char *verb = argv[i];
  int vargc = argc - i - 1;
  char **vargv = argv + i + 1;
  if (strcmp (verb, "state") == 0)
    verb_state (vargc, vargv);
  if (strcmp (verb, "start") == 0)
    verb_start (vargc, vargv);
  if (strcmp (verb, "kill") == 0)
    verb_kill (vargc, vargv);
  if (strcmp (verb, "delete") == 0)
    verb_delete (vargc, vargv);
  if (strcmp (verb, "create") == 0)
    verb_create (vargc, vargv);
  if (strcmp (verb, "run") == 0)
    verb_run (vargc, vargv);
  if (strcmp (verb, "exec") == 0 && getenv ("HUSK_EXEC_PLAN_FD"))
    verb_exec_plan (getenv ("HUSK_EXEC_PLAN_FD")); /* planned by Python: runtime/core/container.py */
  python ();
}

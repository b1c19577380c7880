/* monitor.c - husk-monitor: the parent of one detached image container.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later
 *
 * conmon's job, in conmon's shape: `husk run -d IMAGE` starts one per
 * container, in a session of its own, so it outlives the command.  It
 *   - becomes a child subreaper (PR_SET_CHILD_SUBREAPER) and runs the
 *     OCI `husk run --detach` of the container's bundle with its stdout
 *     and stderr on two pipes; `run` clones the container with
 *     CLONE_PARENT, so the container is this process's child, and every
 *     process orphaned inside it is reparented here, not to pid 1;
 *   - tells the command how the start went on the sync fd: "ok PID", or
 *     "fail CODE" and husk's error lines;
 *   - writes the container's output to the log in the k8s-file format
 *     podman and CRI use: `<RFC 3339 time> stdout|stderr F|P <text>` (F a
 *     whole line, P a part of a longer one);
 *   - keeps the log under --log-size-max bytes: a full container.log
 *     becomes container.log.1 (the one before it goes) and a new one starts;
 *   - when the container exits, records its code and time in exit.json
 *     (written to a temp file and renamed, so a reader never sees half),
 *     drains the pipes, starts the exit command (conmon's --exit-command:
 *     `husk cleanup ID`, which releases the rootfs and network and applies
 *     --rm and --restart) and exits.
 * It writes its own pid and start time to monitor.pid, so `husk ps` can
 * tell a monitor that was killed from one that runs.
 *
 * Attach (conmon's attach socket): it listens on CONTAINER_DIR/attach, a
 * SOCK_SEQPACKET unix socket bound through /proc/self/fd/DIRFD/attach (a
 * sun_path holds 108 bytes; a store's paths can be longer).  Every
 * message to a client is one byte, 1 for stdout or 2 for stderr, then
 * what the container wrote; seqpacket keeps each message whole.  With
 * --stdin the container's stdin is a pipe this process holds: a client's
 * 'd' message carries bytes for it, an 'e' message closes it (EOF).  A
 * client too slow to take a message loses it (the log has everything);
 * when the container has exited and its output is drained, the clients
 * are closed, which is their end of stream.
 *
 * With --health-interval, it is also the health check's clock, as docker's
 * daemon is: every interval while the container runs (and no check is
 * still running) it starts the health command, `husk healthcheck run ID`,
 * which execs the check in the container and records the result.  The
 * poll timeout is the time to the next check, so no timer thread is needed.
 *
 *   husk-monitor [--log-size-max BYTES] [--stdin] [--exit-command PATH
 *                [--exit-command-arg ARG]...] [--health-interval MS --health-command PATH
 *                [--health-command-arg ARG]...] SYNC_FD CONTAINER_DIR PID_FILE -- HUSK ARGS...
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 16384 /* longer lines are split into P records */
#define MAX_CLIENTS 8        /* attached at once */
#define ATTACH_MSG 65536     /* the largest message either way */

struct stream
{
  const char *name; /* "stdout" or "stderr" */
  char tag;         /* its byte in attach messages: 1 or 2 */
  int fd;
  char buf[LINE_MAX_BYTES];
  size_t len;
};

static int log_fd = -1;
static char log_path[4200];
static long long log_size, log_size_max; /* 0: no limit */
static char cdir[4096];
/* husk's own stderr until it exits: the error the command reports. */
static char husk_err[4096];
static size_t husk_err_len;
static pid_t husk_pid;
static int clients[MAX_CLIENTS];
static int nclients;
static int stdin_fd = -1; /* the write end of the container's stdin (--stdin) */

static void
stamp (char out[64])
{
  struct timespec ts;
  struct tm tm;
  clock_gettime (CLOCK_REALTIME, &ts);
  gmtime_r (&ts.tv_sec, &tm);
  size_t n = strftime (out, 64, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf (out + n, 64 - n, ".%09ldZ", ts.tv_nsec);
}

static void
write_all (int fd, const char *p, size_t len)
{
  while (len)
    {
      ssize_t n = write (fd, p, len);
      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return; /* the log's disk is full or gone: the container keeps running */
      p += n;
      len -= n;
    }
}

/* container.log -> container.log.1, and a fresh container.log.  A reader
 * that follows the old file by its fd sees it end; `husk logs -f` reopens
 * the name when the file it reads is renamed away. */
static void
rotate_log (void)
{
  char old[4300];
  snprintf (old, sizeof old, "%s.1", log_path);
  if (rename (log_path, old) < 0)
    return;
  int fd = open (log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  if (fd < 0)
    return; /* keep writing to the renamed file rather than lose output */
  close (log_fd);
  log_fd = fd;
  log_size = 0;
}

static void
log_record (struct stream *s, const char *text, size_t len, int partial)
{
  char head[96];
  char ts[64];
  stamp (ts);
  int n = snprintf (head, sizeof head, "%s %s %c ", ts, s->name, partial ? 'P' : 'F');
  /* One write per record: a reader following the log never sees half. */
  char *rec = malloc (n + len + 1);
  if (rec == NULL)
    return;
  memcpy (rec, head, n);
  memcpy (rec + n, text, len);
  rec[n + len] = '\n';
  if (log_size_max > 0 && log_size > 0 && log_size + n + (long long) len + 1 > log_size_max)
    rotate_log ();
  write_all (log_fd, rec, n + len + 1);
  log_size += n + len + 1;
  free (rec);
}

/* Read what is there; log each whole line, and a part when the buffer is
 * full or the stream ended.  Returns 0 at EOF. */
static int
drain (struct stream *s)
{
  ssize_t got = read (s->fd, s->buf + s->len, sizeof s->buf - s->len);
  if (got < 0)
    return errno == EINTR || errno == EAGAIN;
  if (husk_pid && strcmp (s->name, "stderr") == 0 && got > 0)
    {
      size_t take = (size_t) got < sizeof husk_err - 1 - husk_err_len ? (size_t) got
                                                                       : sizeof husk_err - 1 - husk_err_len;
      memcpy (husk_err + husk_err_len, s->buf + s->len, take);
      husk_err_len += take;
    }
  if (nclients > 0 && got > 0)
    {
      /* One message: the stream's byte, then the bytes as they came. */
      char msg[1 + LINE_MAX_BYTES];
      msg[0] = s->tag;
      memcpy (msg + 1, s->buf + s->len, got);
      for (int c = 0; c < nclients; c++)
        send (clients[c], msg, 1 + got, MSG_DONTWAIT | MSG_NOSIGNAL);
    }
  s->len += got;
  size_t start = 0;
  for (size_t i = 0; i < s->len; i++)
    if (s->buf[i] == '\n')
      {
        log_record (s, s->buf + start, i - start, 0);
        start = i + 1;
      }
  if (start == 0 && (s->len == sizeof s->buf || (got == 0 && s->len)))
    {
      log_record (s, s->buf, s->len, 1);
      start = s->len;
    }
  memmove (s->buf, s->buf + start, s->len - start);
  s->len -= start;
  return got > 0;
}

/* Everything readable now, without blocking: poll(2) with no timeout
 * says whether a read would return at once.  EOF is left for the main
 * loop, which counts the streams that are closed. */
static void
drain_now (struct stream *s)
{
  while (s->fd >= 0)
    {
      struct pollfd p = { .fd = s->fd, .events = POLLIN };
      if (poll (&p, 1, 0) <= 0 || !drain (s))
        return;
    }
}

static void
write_file (const char *name, const char *fmt, ...)
{
  char path[4200], tmp[4300], text[512];
  va_list ap;
  va_start (ap, fmt);
  int n = vsnprintf (text, sizeof text, fmt, ap);
  va_end (ap);
  snprintf (path, sizeof path, "%s/%s", cdir, name);
  snprintf (tmp, sizeof tmp, "%s/.%s.tmp", cdir, name);
  int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0)
    return; /* `husk rm -f` removed the directory meanwhile */
  write_all (fd, text, n);
  close (fd);
  rename (tmp, path);
}

/* Field 22 of /proc/PID/stat: with the pid, names this process and no
 * later one that reuses the pid. */
static unsigned long long
start_time (pid_t pid)
{
  char path[64], buf[1024];
  snprintf (path, sizeof path, "/proc/%d/stat", pid);
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  ssize_t n = read (fd, buf, sizeof buf - 1);
  close (fd);
  if (n <= 0)
    return 0;
  buf[n] = '\0';
  char *p = strrchr (buf, ')');
  unsigned long long t = 0;
  for (int field = 2; p && *p; p++)
    if (*p == ' ' && ++field == 22)
      {
        t = strtoull (p + 1, NULL, 10);
        break;
      }
  return t;
}

static pid_t
read_pid_file (const char *path)
{
  char buf[32] = { 0 };
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return 0;
  ssize_t n = read (fd, buf, sizeof buf - 1);
  close (fd);
  return n > 0 ? (pid_t) atoi (buf) : 0;
}

static int
code_of (int status)
{
  return WIFSIGNALED (status) ? 128 + WTERMSIG (status) : WEXITSTATUS (status);
}

/* A helper command (the exit command, a health check): forked, in a
 * session of its own, with no signal blocked and stdio on /dev/null.
 * The exit command runs after this process is gone, reparented to the
 * nearest subreaper (or init) when we exit; a health check is our child,
 * reaped in the main loop. */
static pid_t
run_command (char **argv)
{
  if (argv[0] == NULL)
    return 0;
  pid_t pid = fork ();
  if (pid == 0)
    {
      setsid ();
      sigset_t none;
      sigemptyset (&none);
      sigprocmask (SIG_SETMASK, &none, NULL);
      int null = open ("/dev/null", O_RDWR);
      if (null >= 0)
        {
          dup2 (null, 0);
          dup2 (null, 1);
          dup2 (null, 2);
        }
      execv (argv[0], argv);
      _exit (127);
    }
  return pid;
}

static long long
now_ms (void)
{
  struct timespec t;
  clock_gettime (CLOCK_MONOTONIC, &t);
  return (long long) t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* The attach socket, bound by its directory's fd: bind(2) resolves
 * /proc/self/fd/N like any path, so its length is always short. */
static int
listen_attach (void)
{
  int dirfd = open (cdir, O_PATH | O_DIRECTORY | O_CLOEXEC);
  int fd = socket (AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  if (dirfd < 0 || fd < 0)
    goto fail;
  snprintf (addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/attach", dirfd);
  unlinkat (dirfd, "attach", 0); /* a socket left by this container's monitor before */
  if (bind (fd, (struct sockaddr *) &addr, sizeof addr) < 0 || listen (fd, MAX_CLIENTS) < 0)
    goto fail;
  close (dirfd);
  return fd;
fail:
  if (dirfd >= 0)
    close (dirfd);
  if (fd >= 0)
    close (fd);
  return -1; /* no attach for this container; it runs and logs all the same */
}

static void
drop_client (int i)
{
  close (clients[i]);
  clients[i] = clients[--nclients];
}

/* One message from client I: 'd' + bytes for the container's stdin, or
 * 'e' to close it.  A client without --stdin only ever closes. */
static void
client_input (int i)
{
  char msg[ATTACH_MSG];
  ssize_t n = recv (clients[i], msg, sizeof msg, MSG_DONTWAIT);
  if (n < 0 && (errno == EAGAIN || errno == EINTR))
    return;
  if (n <= 0)
    {
      drop_client (i);
      return;
    }
  if (msg[0] == 'd' && stdin_fd >= 0)
    write_all (stdin_fd, msg + 1, n - 1);
  else if (msg[0] == 'e' && stdin_fd >= 0)
    {
      close (stdin_fd);
      stdin_fd = -1;
    }
}

static void
usage (void)
{
  fprintf (stderr, "usage: husk-monitor [--log-size-max BYTES] [--stdin] [--exit-command PATH [--exit-command-arg ARG]...] "
                   "[--health-interval MS --health-command PATH [--health-command-arg ARG]...] "
                   "SYNC_FD CONTAINER_DIR PID_FILE -- HUSK ARGS...\n");
  exit (2);
}

int
main (int argc, char **argv)
{
  static const struct option options[] = { { "log-size-max", required_argument, NULL, 'l' },
                                           { "exit-command", required_argument, NULL, 'e' },
                                           { "exit-command-arg", required_argument, NULL, 'a' },
                                           { "health-interval", required_argument, NULL, 'i' },
                                           { "health-command", required_argument, NULL, 'c' },
                                           { "health-command-arg", required_argument, NULL, 'g' },
                                           { "stdin", no_argument, NULL, 's' },
                                           { NULL, 0, NULL, 0 } };
  char **exit_argv = calloc (argc + 1, sizeof *exit_argv);
  char **health_argv = calloc (argc + 1, sizeof *health_argv);
  int nexit = 0, nhealth = 1, opt;
  long long health_interval = 0;
  int want_stdin = 0;
  if (exit_argv == NULL || health_argv == NULL)
    return 1;
  exit_argv[nexit++] = NULL; /* argv[0], the path, once --exit-command is seen */
  while ((opt = getopt_long (argc, argv, "+", options, NULL)) != -1)
    switch (opt)
      {
      case 'l':
        log_size_max = strtoll (optarg, NULL, 10);
        break;
      case 'e':
        exit_argv[0] = optarg;
        break;
      case 'a':
        exit_argv[nexit++] = optarg;
        break;
      case 'i':
        health_interval = strtoll (optarg, NULL, 10);
        break;
      case 'c':
        health_argv[0] = optarg;
        break;
      case 'g':
        health_argv[nhealth++] = optarg;
        break;
      case 's':
        want_stdin = 1;
        break;
      default:
        usage ();
      }
  if (exit_argv[0] == NULL)
    nexit = 0;
  exit_argv[nexit] = NULL;
  health_argv[nhealth] = NULL;
  if (health_argv[0] == NULL || health_interval <= 0)
    health_interval = 0;
  argv += optind - 1; /* argv[1..] are the positional arguments */
  argc -= optind - 1;
  if (argc < 6 || strcmp (argv[4], "--") != 0)
    usage ();
  int sync_fd = atoi (argv[1]);
  snprintf (cdir, sizeof cdir, "%s", argv[2]);
  const char *pid_file = argv[3];

  snprintf (log_path, sizeof log_path, "%s/container.log", cdir);
  log_fd = open (log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  struct stat log_st;
  if (log_fd >= 0 && fstat (log_fd, &log_st) == 0)
    log_size = log_st.st_size;
  if (log_fd < 0 || prctl (PR_SET_CHILD_SUBREAPER, 1) < 0)
    {
      dprintf (sync_fd, "fail 125\nhusk-monitor: %s: %s\n", log_path, strerror (errno));
      return 1;
    }
  write_file ("monitor.pid", "%d %llu\n", getpid (), start_time (getpid ()));

  /* SIGCHLD through a signalfd: one poll loop for output and exits. */
  sigset_t mask;
  sigemptyset (&mask);
  sigaddset (&mask, SIGCHLD);
  sigprocmask (SIG_BLOCK, &mask, NULL);
  int sfd = signalfd (-1, &mask, SFD_CLOEXEC);
  signal (SIGPIPE, SIG_IGN);

  int out[2], err[2], in[2] = { -1, -1 };
  if (sfd < 0 || pipe2 (out, O_CLOEXEC) < 0 || pipe2 (err, O_CLOEXEC) < 0
      || (want_stdin && pipe2 (in, O_CLOEXEC) < 0))
    {
      dprintf (sync_fd, "fail 125\nhusk-monitor: %s\n", strerror (errno));
      return 1;
    }
  int listen_fd = listen_attach ();
  husk_pid = fork ();
  if (husk_pid == 0)
    {
      sigprocmask (SIG_UNBLOCK, &mask, NULL);
      /* A detached container's stdin is /dev/null, as docker's, or with
       * --stdin (run -d -i) a pipe that attach clients write to. */
      int input = want_stdin ? in[0] : open ("/dev/null", O_RDONLY | O_CLOEXEC);
      dup2 (input, 0);
      dup2 (out[1], 1);
      dup2 (err[1], 2);
      execv (argv[5], argv + 5);
      fprintf (stderr, "husk-monitor: exec %s: %s\n", argv[5], strerror (errno));
      _exit (127);
    }
  close (out[1]);
  close (err[1]);
  if (want_stdin)
    {
      close (in[0]);
      stdin_fd = in[1];
    }

  struct stream streams[2] = { { .name = "stdout", .tag = 1, .fd = out[0] },
                               { .name = "stderr", .tag = 2, .fd = err[0] } };
  pid_t container = 0;
  int container_done = 0, open_streams = 2;
  /* Exits seen before the container's pid was known (it may be quicker
   * than husk's own exit). */
  pid_t early_pid[16];
  int early_status[16], nearly = 0;
  char early_time[16][64];
  pid_t health_pid = 0;
  long long next_check = 0;

  while (open_streams > 0 || !container_done)
    {
      /* 0 signals, 1-2 the container's output, 3 new attach clients, 4.. clients */
      struct pollfd fds[4 + MAX_CLIENTS] = { { .fd = sfd, .events = POLLIN },
                                             { .fd = streams[0].fd, .events = POLLIN },
                                             { .fd = streams[1].fd, .events = POLLIN },
                                             { .fd = nclients < MAX_CLIENTS ? listen_fd : -1, .events = POLLIN } };
      int polled = nclients;
      for (int c = 0; c < polled; c++)
        fds[4 + c] = (struct pollfd){ .fd = clients[c], .events = POLLIN };
      int timeout = -1;
      if (health_interval && container > 0 && !container_done)
        {
          long long now = now_ms ();
          if (next_check == 0)
            next_check = now + health_interval; /* the first check is one interval in, as docker's */
          if (now >= next_check)
            {
              if (health_pid == 0) /* a check still running is not doubled */
                health_pid = run_command (health_argv);
              next_check = now + health_interval;
            }
          timeout = (int) (next_check - now);
        }
      if (poll (fds, 4 + polled, timeout) < 0 && errno != EINTR)
        break;
      for (int c = polled - 1; c >= 0; c--) /* backwards: drop_client moves the last into C */
        if (fds[4 + c].revents)
          client_input (c);
      if (fds[3].revents & POLLIN)
        {
          int c = accept4 (listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
          if (c >= 0)
            clients[nclients++] = c;
        }
      for (int i = 0; i < 2; i++)
        if (streams[i].fd >= 0 && fds[i + 1].revents && !drain (&streams[i]))
          {
            close (streams[i].fd);
            streams[i].fd = -1;
            open_streams--;
          }
      if (!(fds[0].revents & POLLIN))
        continue;
      struct signalfd_siginfo si;
      if (read (sfd, &si, sizeof si) < 0)
        continue;
      int status;
      pid_t pid;
      while ((pid = waitpid (-1, &status, WNOHANG)) > 0)
        {
          if (health_pid && pid == health_pid)
            health_pid = 0;
          else if (pid == husk_pid)
            {
              husk_pid = 0;
              if (code_of (status) != 0)
                {
                  /* Creation failed: the command reports husk's message. */
                  while (streams[1].fd >= 0 && drain (&streams[1]))
                    ;
                  dprintf (sync_fd, "fail %d\n%.*s", code_of (status), (int) husk_err_len, husk_err);
                  return 1;
                }
              container = read_pid_file (pid_file);
              dprintf (sync_fd, "ok %d\n", container);
              close (sync_fd);
              for (int i = 0; i < nearly; i++)
                if (early_pid[i] == container)
                  {
                    write_file ("exit.json", "{\"exit_code\": %d, \"finished_at\": \"%s\"}\n",
                                code_of (early_status[i]), early_time[i]);
                    container_done = 1;
                  }
              if (container <= 0)
                container_done = 1;
            }
          else if (container && pid == container)
            {
              char ts[64];
              stamp (ts);
              /* What the container wrote before it exited is in the log
               * before exit.json says it exited: `husk wait; husk logs`
               * reads it all. */
              for (int i = 0; i < 2; i++)
                drain_now (&streams[i]);
              write_file ("exit.json", "{\"exit_code\": %d, \"finished_at\": \"%s\"}\n", code_of (status), ts);
              container_done = 1;
            }
          else if (!container && nearly < 16)
            {
              early_pid[nearly] = pid;
              stamp (early_time[nearly]);
              early_status[nearly++] = status;
            }
        }
    }
  while (nclients > 0)
    drop_client (0); /* end of stream for attached clients */
  if (health_pid > 0)
    kill (health_pid, SIGKILL); /* its container is gone */
  run_command (exit_argv);
  return 0;
}

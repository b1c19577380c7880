/* husk-checker - a static probe that tests copy into a container.
 *
 * It reports, as one JSON object on stdout, what the process sees from the
 * inside: identity, capability sets, no_new_privs, rlimits, mounts, cwd,
 * hostname, namespaces, terminals, open fds, environment and umask.  Tests
 * assert on that output instead of trusting the runtime's word.
 *
 *   husk-checker [report]       the JSON report
 *   husk-checker exit N         exit with status N
 *   husk-checker wait-signal    print the first signal received, exit 0
 *   husk-checker trap-term N    sleep until SIGTERM, then exit N
 *   husk-checker write PATH S   write S to PATH (report the errno if refused)
 *   husk-checker stat PATH      type, mode, uid, gid, rdev of PATH (lstat)
 *   husk-checker memhog MB      touch MB MiB of memory, then print "survived"
 *   husk-checker forkbomb N     fork up to N sleeping children; print how many forked
 *   husk-checker udp-echo PORT  answer each UDP datagram on PORT with "echo:" + it
 *   husk-checker tcp-echo PORT  answer each TCP connection's first read with "echo:" + it
 *
 * SPDX-License-Identifier: GPL-3.0-or-later */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/personality.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <unistd.h>

extern char **environ;
static int first = 1;

static void
json_str (const char *s)
{
  putchar ('"');
  for (; *s; s++)
    {
      unsigned char c = *s;
      if (c == '"' || c == '\\')
        printf ("\\%c", c);
      else if (c < 0x20)
        printf ("\\u%04x", c);
      else
        putchar (c);
    }
  putchar ('"');
}

static void
key (const char *k)
{
  printf ("%s", first ? "{" : ",");
  first = 0;
  json_str (k);
  putchar (':');
}

/* A "Name:\tvalue" line of /proc/self/status. */
static void
status_field (const char *name, char *out, size_t size)
{
  char line[512];
  size_t n = strlen (name);
  FILE *f = fopen ("/proc/self/status", "r");
  out[0] = '\0';
  if (!f)
    return;
  while (fgets (line, sizeof line, f))
    if (strncmp (line, name, n) == 0 && line[n] == ':')
      {
        char *v = line + n + 1;
        while (*v == '\t' || *v == ' ')
          v++;
        v[strcspn (v, "\n")] = '\0';
        snprintf (out, size, "%s", v);
        break;
      }
  fclose (f);
}

static void
report (void)
{
  char buf[PATH_MAX], v[256];
  gid_t groups[NGROUPS_MAX];
  struct utsname un;
  int n;

  key ("uid"); printf ("%d", getuid ());
  key ("gid"); printf ("%d", getgid ());
  key ("euid"); printf ("%d", geteuid ());
  key ("egid"); printf ("%d", getegid ());
  key ("groups");
  n = getgroups (NGROUPS_MAX, groups);
  putchar ('[');
  for (int i = 0; i < n; i++)
    printf ("%s%d", i ? "," : "", groups[i]);
  putchar (']');
  key ("pid"); printf ("%d", getpid ());
  key ("ppid"); printf ("%d", getppid ());
  key ("sid"); printf ("%d", getsid (0));

  static const char *caps[] = { "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb" };
  key ("caps");
  putchar ('{');
  for (size_t i = 0; i < 5; i++)
    {
      status_field (caps[i], v, sizeof v);
      printf ("%s\"%s\":\"%s\"", i ? "," : "", caps[i], v);
    }
  putchar ('}');
  key ("no_new_privs"); printf ("%d", prctl (PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0));
  key ("dumpable"); printf ("%d", prctl (PR_GET_DUMPABLE, 0, 0, 0, 0));
  status_field ("Umask", v, sizeof v);
  key ("umask"); json_str (v);
  status_field ("Seccomp", v, sizeof v);
  key ("seccomp"); json_str (v);
  key ("personality"); printf ("%d", personality (0xffffffff));

  key ("rlimits");
  putchar ('{');
  for (int r = 0; r < RLIM_NLIMITS; r++)
    {
      struct rlimit lim;
      getrlimit (r, &lim);
      printf ("%s\"%d\":[%lld,%lld]", r ? "," : "", r,
              lim.rlim_cur == RLIM_INFINITY ? -1LL : (long long) lim.rlim_cur,
              lim.rlim_max == RLIM_INFINITY ? -1LL : (long long) lim.rlim_max);
    }
  putchar ('}');

  key ("cwd"); json_str (getcwd (buf, sizeof buf) ? buf : "");
  uname (&un);
  key ("hostname"); json_str (un.nodename);
  key ("domainname"); json_str (un.domainname);

  static const char *nss[] = { "cgroup", "ipc", "mnt", "net", "pid", "time", "user", "uts" };
  key ("namespaces");
  putchar ('{');
  for (size_t i = 0; i < sizeof nss / sizeof *nss; i++)
    {
      char path[64];
      snprintf (path, sizeof path, "/proc/self/ns/%s", nss[i]);
      ssize_t len = readlink (path, buf, sizeof buf - 1);
      buf[len > 0 ? len : 0] = '\0';
      printf ("%s\"%s\":", i ? "," : "", nss[i]);
      json_str (buf);
    }
  putchar ('}');

  key ("tty");
  printf ("[%d,%d,%d]", isatty (0), isatty (1), isatty (2));
  key ("ttyname"); json_str (ttyname (0) ? ttyname (0) : "");

  /* Open fds, read before opendir adds its own. */
  key ("fds");
  putchar ('[');
  {
    int fds[1024], count = 0, self;
    DIR *d = opendir ("/proc/self/fd");
    self = d ? dirfd (d) : -1;
    struct dirent *e;
    while (d && (e = readdir (d)) && count < 1024)
      if (e->d_name[0] != '.' && atoi (e->d_name) != self)
        fds[count++] = atoi (e->d_name);
    if (d)
      closedir (d);
    for (int i = 0; i < count; i++)
      {
        char path[64];
        snprintf (path, sizeof path, "/proc/self/fd/%d", fds[i]);
        ssize_t len = readlink (path, buf, sizeof buf - 1);
        buf[len > 0 ? len : 0] = '\0';
        printf ("%s{\"fd\":%d,\"target\":", i ? "," : "", fds[i]);
        json_str (buf);
        putchar ('}');
      }
  }
  putchar (']');

  key ("env");
  putchar ('[');
  for (char **e = environ; *e; e++)
    {
      if (e != environ)
        putchar (',');
      json_str (*e);
    }
  putchar (']');

  key ("mounts");
  putchar ('[');
  {
    FILE *f = fopen ("/proc/self/mountinfo", "r");
    char line[4096];
    int firstm = 1;
    while (f && fgets (line, sizeof line, f))
      {
        /* id parent major:minor root mountpoint options ... - fstype source superoptions */
        char root[1024], point[1024], opts[512], fstype[128], source[1024], super[1024];
        char *dash = strstr (line, " - ");
        if (!dash || sscanf (line, "%*d %*d %*s %1023s %1023s %511s", root, point, opts) != 3
            || sscanf (dash + 3, "%127s %1023s %1023s", fstype, source, super) < 2)
          continue;
        printf ("%s{\"target\":", firstm ? "" : ",");
        firstm = 0;
        json_str (point);
        printf (",\"root\":");
        json_str (root);
        printf (",\"type\":");
        json_str (fstype);
        printf (",\"source\":");
        json_str (source);
        printf (",\"options\":");
        json_str (opts);
        printf (",\"super\":");
        json_str (super);
        putchar ('}');
      }
    if (f)
      fclose (f);
  }
  putchar (']');
  printf ("}\n");
}

static void
stat_path (const char *path)
{
  struct stat st;
  if (lstat (path, &st) < 0)
    {
      printf ("{\"error\":\"%s\"}\n", strerror (errno));
      return;
    }
  const char *type = S_ISDIR (st.st_mode) ? "dir" : S_ISREG (st.st_mode) ? "file"
                   : S_ISLNK (st.st_mode) ? "symlink" : S_ISCHR (st.st_mode) ? "char"
                   : S_ISBLK (st.st_mode) ? "block" : S_ISFIFO (st.st_mode) ? "fifo" : "other";
  printf ("{\"type\":\"%s\",\"mode\":%u,\"uid\":%d,\"gid\":%d,\"major\":%u,\"minor\":%u,\"size\":%lld}\n",
          type, st.st_mode & 07777, st.st_uid, st.st_gid, major (st.st_rdev), minor (st.st_rdev),
          (long long) st.st_size);
}

static volatile sig_atomic_t got;
static void on_signal (int sig) { got = sig; }

/* A tiny echo server for the network tests: prints "listening" once bound,
 * then answers forever, so the test can reach it from the host. */
static int
echo_server (int udp, int port)
{
  struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons (port) };
  int one = 1, fd = socket (AF_INET, udp ? SOCK_DGRAM : SOCK_STREAM, 0);
  if (fd < 0 || setsockopt (fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0
      || bind (fd, (struct sockaddr *) &addr, sizeof addr) < 0 || (!udp && listen (fd, 16) < 0))
    {
      printf ("%s\n", strerrorname_np (errno));
      return 1;
    }
  printf ("listening\n");
  fflush (stdout);
  for (;;)
    {
      char buf[1024], out[1100];
      struct sockaddr_in peer;
      socklen_t len = sizeof peer;
      int conn = fd;
      ssize_t n;
      if (!udp && (conn = accept (fd, NULL, NULL)) < 0)
        continue;
      n = udp ? recvfrom (fd, buf, sizeof buf - 1, 0, (struct sockaddr *) &peer, &len) : read (conn, buf, sizeof buf - 1);
      if (n > 0)
        {
          int m = snprintf (out, sizeof out, "echo:%.*s", (int) n, buf);
          if (udp)
            sendto (fd, out, m, 0, (struct sockaddr *) &peer, len);
          else if (write (conn, out, m) < 0)
            perror ("write");
        }
      if (!udp)
        close (conn);
    }
}

int
main (int argc, char **argv)
{
  const char *cmd = argc > 1 ? argv[1] : "report";

  if (strcmp (cmd, "report") == 0)
    report ();
  else if (strcmp (cmd, "exit") == 0 && argc > 2)
    return atoi (argv[2]);
  else if (strcmp (cmd, "wait-signal") == 0 || strcmp (cmd, "trap-term") == 0)
    {
      int trap = strcmp (cmd, "trap-term") == 0;
      struct sigaction sa = { .sa_handler = on_signal };
      for (int s = 1; s < 32; s++)
        if (s != SIGKILL && s != SIGSTOP && (!trap || s == SIGTERM))
          sigaction (s, &sa, NULL);
      printf ("ready\n");
      fflush (stdout);
      while (!got)
        pause ();
      if (trap)
        return argc > 2 ? atoi (argv[2]) : 0;
      printf ("%s\n", sigabbrev_np (got));
    }
  else if (strcmp (cmd, "write") == 0 && argc > 3)
    {
      int fd = open (argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
      if (fd < 0 || write (fd, argv[3], strlen (argv[3])) < 0)
        {
          printf ("%s\n", strerrorname_np (errno));
          return 1;
        }
      printf ("ok\n");
    }
  else if (strcmp (cmd, "stat") == 0 && argc > 2)
    stat_path (argv[2]);
  else if (strcmp (cmd, "memhog") == 0 && argc > 2)
    {
      long mb = atol (argv[2]);
      for (long i = 0; i < mb; i++)
        {
          char *p = malloc (1 << 20);
          if (p == NULL)
            break;
          memset (p, 1, 1 << 20); /* touch every page: charge it to the cgroup */
        }
      printf ("survived\n");
    }
  else if ((strcmp (cmd, "udp-echo") == 0 || strcmp (cmd, "tcp-echo") == 0) && argc > 2)
    return echo_server (cmd[0] == 'u', atoi (argv[2]));
  else if (strcmp (cmd, "forkbomb") == 0 && argc > 2)
    {
      int n = atoi (argv[2]), forked = 0;
      for (; forked < n; forked++)
        {
          pid_t pid = fork ();
          if (pid < 0)
            break;
          if (pid == 0)
            {
              pause ();
              _exit (0);
            }
        }
      printf ("%d\n", forked);
      fflush (stdout);
      kill (0, SIGKILL);
    }
  else
    {
      fprintf (stderr, "husk-checker: unknown command %s\n", cmd);
      return 2;
    }
  return 0;
}

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
 *   husk-checker exe-overwrite PID|COMM
 *                               try CVE-2019-5736 on that process (waits for it
 *                               to appear): open /proc/PID/exe, print a line,
 *                               reopen it for writing once it has stopped
 *                               running, write back its own first byte (so
 *                               nothing ever changes), print a second line
 *   husk-checker keyring        the session keyring's serial and description
 *   husk-checker syscall NR [A B C]  make a raw syscall; print "ok" or the errno name
 *   husk-checker raw-udp IFACE MAC IP PORT TEXT
 *                               send one UDP datagram as a raw Ethernet frame
 *                               (AF_PACKET: CAP_NET_RAW), bypassing our routes
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
#include <arpa/inet.h>
#include <linux/keyctl.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <netinet/in.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
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
  status_field ("SigBlk", v, sizeof v);
  key ("sigblk"); json_str (v);
  status_field ("SigIgn", v, sizeof v);
  key ("sigign"); json_str (v);
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

static const char *
errname (int ok)
{
  return ok ? "ok" : strerrorname_np (errno);
}

/* CVE-2019-5736 from the inside: a process of the runtime that runs in
 * our pid namespace exposes its binary as /proc/PID/exe.  An attacker
 * opens it, waits for the runtime to exit (writing to a running binary
 * gives ETXTBSY), reopens it for writing and overwrites the host's
 * runtime.  We write back the byte that is there: the attempt is real,
 * the content never changes. */
static int
find_target (const char *target)
{
  if (target[0] >= '0' && target[0] <= '9')
    return atoi (target);
  for (int tries = 0; tries < 400; tries++)  /* 20 s */
    {
      DIR *d = opendir ("/proc");
      struct dirent *e;
      int found = 0;
      while (!found && d && (e = readdir (d)))
        {
          char path[64], comm[64] = "";
          int pid = atoi (e->d_name);
          if (pid <= 0 || pid == getpid ())
            continue;
          snprintf (path, sizeof path, "/proc/%d/comm", pid);
          FILE *f = fopen (path, "r");
          if (f && fgets (comm, sizeof comm, f))
            comm[strcspn (comm, "\n")] = '\0';
          if (f)
            fclose (f);
          if (strcmp (comm, target) == 0)
            found = pid;
        }
      if (d)
        closedir (d);
      if (found)
        return found;
      usleep (50000);
    }
  return -1;
}

static int
exe_overwrite (const char *target)
{
  char path[64], link[PATH_MAX] = "";
  int pid = find_target (target);
  if (pid < 0)
    {
      printf ("{\"error\":\"no process %s\"}\n", target);
      return 1;
    }
  snprintf (path, sizeof path, "/proc/%d/exe", pid);
  ssize_t n = readlink (path, link, sizeof link - 1);
  link[n > 0 ? n : 0] = '\0';
  int fd = open (path, O_RDONLY | O_CLOEXEC);
  int open_errno = errno;
  printf ("{\"pid\":%d,\"exe\":", pid);
  json_str (link);
  errno = open_errno;
  printf (",\"open\":\"%s\"}\n", errname (fd >= 0));
  fflush (stdout);
  if (fd < 0)
    {
      printf ("{\"reopen_write\":\"-\",\"write\":\"-\"}\n");
      return 0;
    }
  /* Reopen for writing through our own fd, retrying while it runs. */
  char self[64], byte;
  snprintf (self, sizeof self, "/proc/self/fd/%d", fd);
  int w = -1;
  for (int tries = 0; tries < 400; tries++)
    {
      w = open (self, O_WRONLY | O_CLOEXEC);
      if (w >= 0 || errno != ETXTBSY)
        break;
      usleep (50000);
    }
  printf ("{\"reopen_write\":\"%s\"", errname (w >= 0));
  const char *written = "-";
  if (w >= 0 && pread (fd, &byte, 1, 0) == 1)
    written = errname (pwrite (w, &byte, 1, 0) == 1);
  printf (",\"write\":\"%s\"}\n", written);
  return 0;
}

static void
keyring (void)
{
  char desc[256] = "";
  long serial = syscall (SYS_keyctl, KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0);
  if (serial >= 0)
    syscall (SYS_keyctl, KEYCTL_DESCRIBE, serial, desc, sizeof desc - 1);
  printf ("{\"serial\":%ld,\"description\":", serial);
  json_str (desc);
  printf ("}\n");
}

static uint16_t
ip_checksum (const void *data, size_t len)
{
  const uint16_t *w = data;
  uint32_t sum = 0;
  for (; len > 1; len -= 2)
    sum += *w++;
  while (sum >> 16)
    sum = (sum & 0xffff) + (sum >> 16);
  return ~sum;
}

/* A UDP datagram in a hand-built Ethernet frame, sent on IFACE to MAC.
 * The kernel's routing never sees it leave: this is how a neighbour on
 * the bridge reaches an address the host thinks is its own loopback
 * (CVE-2020-8558).  Source: our eth0 address. */
static int
raw_udp (const char *ifname, const char *mac, const char *dst, int port, const char *text)
{
  unsigned char frame[1514] = { 0 };
  size_t textlen = strlen (text);
  int s = socket (AF_PACKET, SOCK_RAW, htons (ETH_P_IP));
  if (s < 0)
    {
      printf ("%s\n", strerrorname_np (errno));
      return 1;
    }
  struct ifreq ifr = { 0 };
  snprintf (ifr.ifr_name, sizeof ifr.ifr_name, "%s", ifname);
  if (ioctl (s, SIOCGIFINDEX, &ifr) < 0)
    return printf ("SIOCGIFINDEX %s\n", strerrorname_np (errno)), 1;
  int ifindex = ifr.ifr_ifindex;
  if (ioctl (s, SIOCGIFHWADDR, &ifr) < 0)
    return printf ("SIOCGIFHWADDR %s\n", strerrorname_np (errno)), 1;
  unsigned char src_mac[6];
  memcpy (src_mac, ifr.ifr_hwaddr.sa_data, 6);
  struct ifreq ifa = { 0 };
  snprintf (ifa.ifr_name, sizeof ifa.ifr_name, "%s", ifname);
  if (ioctl (s, SIOCGIFADDR, &ifa) < 0)
    return printf ("SIOCGIFADDR %s\n", strerrorname_np (errno)), 1;
  struct in_addr src = ((struct sockaddr_in *) &ifa.ifr_addr)->sin_addr;

  struct ether_header *eth = (struct ether_header *) frame;
  if (sscanf (mac, "%hhx:%hhx:%hhx:%hhx:%hhx:%hhx", &eth->ether_dhost[0], &eth->ether_dhost[1],
              &eth->ether_dhost[2], &eth->ether_dhost[3], &eth->ether_dhost[4], &eth->ether_dhost[5]) != 6)
    return printf ("bad MAC %s\n", mac), 1;
  memcpy (eth->ether_shost, src_mac, 6);
  eth->ether_type = htons (ETH_P_IP);
  struct iphdr *ip = (struct iphdr *) (frame + sizeof *eth);
  struct udphdr *udp = (struct udphdr *) (ip + 1);
  size_t iplen = sizeof *ip + sizeof *udp + textlen;
  ip->version = 4;
  ip->ihl = 5;
  ip->ttl = 64;
  ip->protocol = IPPROTO_UDP;
  ip->tot_len = htons (iplen);
  ip->saddr = src.s_addr;
  if (inet_pton (AF_INET, dst, &ip->daddr) != 1)
    return printf ("bad IP %s\n", dst), 1;
  ip->check = ip_checksum (ip, sizeof *ip);
  udp->source = htons (40000);
  udp->dest = htons (port);
  udp->len = htons (sizeof *udp + textlen);
  udp->check = 0; /* optional over IPv4 */
  memcpy (udp + 1, text, textlen);

  struct sockaddr_ll to = { .sll_family = AF_PACKET, .sll_ifindex = ifindex, .sll_halen = 6 };
  memcpy (to.sll_addr, eth->ether_dhost, 6);
  if (sendto (s, frame, sizeof *eth + iplen, 0, (struct sockaddr *) &to, sizeof to) < 0)
    return printf ("sendto %s\n", strerrorname_np (errno)), 1;
  printf ("sent\n");
  return 0;
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
  else if (strcmp (cmd, "exe-overwrite") == 0 && argc > 2)
    return exe_overwrite (argv[2]);
  else if (strcmp (cmd, "syscall") == 0 && argc > 2)
    {
      /* A raw syscall with up to 3 integer args: what a seccomp filter lets through. */
      long a[3] = { 0 };
      for (int i = 0; i < 3 && i + 3 < argc; i++)
        a[i] = strtol (argv[i + 3], NULL, 0);
      long r = syscall (strtol (argv[2], NULL, 0), a[0], a[1], a[2]);
      printf ("%s\n", r < 0 ? strerrorname_np (errno) : "ok");
    }
  else if (strcmp (cmd, "keyring") == 0)
    keyring ();
  else if (strcmp (cmd, "raw-udp") == 0 && argc > 6)
    return raw_udp (argv[2], argv[3], argv[4], atoi (argv[5]), argv[6]);
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

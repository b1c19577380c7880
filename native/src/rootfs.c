/* rootfs.c - mounts, devices, masks and pivot_root for a new container.
 *
 * Every destination is resolved inside the rootfs by fd (openat2 with
 * RESOLVE_IN_ROOT) and mounted with the new mount API (open_tree/fsopen,
 * mount_setattr, move_mount onto that fd): a symlink planted in the image
 * can never send a mount or a write to the host (CVE-2021-30465,
 * CVE-2026-41579).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later */
#define _GNU_SOURCE
#include "rootfs.h"
#include "util.h"
#include "trace.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/magic.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* MS_* flags as mount(2) knows them -> MOUNT_ATTR_* for fsmount/mount_setattr. */
static void
attrs_from_flags (int64_t ms, struct mount_attr *attr)
{
  memset (attr, 0, sizeof *attr);
  if (ms & MS_RDONLY)
    attr->attr_set |= MOUNT_ATTR_RDONLY;
  if (ms & MS_NOSUID)
    attr->attr_set |= MOUNT_ATTR_NOSUID;
  if (ms & MS_NODEV)
    attr->attr_set |= MOUNT_ATTR_NODEV;
  if (ms & MS_NOEXEC)
    attr->attr_set |= MOUNT_ATTR_NOEXEC;
  if (ms & MS_NODIRATIME)
    attr->attr_set |= MOUNT_ATTR_NODIRATIME;
  /* The atime mode is one field: clear it to set one of its values. */
  if (ms & (MS_NOATIME | MS_STRICTATIME | MS_RELATIME))
    {
      attr->attr_clr |= MOUNT_ATTR__ATIME;
      if (ms & MS_NOATIME)
        attr->attr_set |= MOUNT_ATTR_NOATIME;
      else if (ms & MS_STRICTATIME)
        attr->attr_set |= MOUNT_ATTR_STRICTATIME;
      else
        attr->attr_set |= MOUNT_ATTR_RELATIME;
    }
}

/* mkdir -p inside the rootfs; returns an O_PATH fd of the directory.
 * A dangling symlink on the way is followed inside the rootfs (as the
 * kernel would after pivot_root): its target is created there instead. */
static int
mkdir_in_root_depth (int rootfd, const char *path, int depth)
{
  char buf[PATH_MAX];
  size_t len = strlen (path);
  int fd;

  if (len >= sizeof buf)
    die (ENAMETOOLONG, "resolve in rootfs", "%s", path);
  if (depth > 40)
    {
      errno = ELOOP;
      return -1;
    }
  fd = open_in_root (rootfd, path, O_PATH | O_DIRECTORY, 0);
  if (fd >= 0 || errno != ENOENT)
    return fd;

  /* Walk the components; resolve each prefix from the root again so a
   * symlink among them stays inside the rootfs. */
  memcpy (buf, path, len + 1);
  for (char *slash = buf + 1;; slash++)
    {
      if (*slash != '/' && *slash != '\0')
        continue;
      char saved = *slash;
      *slash = '\0';
      fd = open_in_root (rootfd, buf, O_PATH | O_DIRECTORY, 0);
      if (fd < 0 && errno == ENOENT)
        {
          char *base = strrchr (buf, '/');
          char link[PATH_MAX], next[2 * PATH_MAX + 2];
          ssize_t n;
          *base = '\0';
          cleanup_close int parent = open_in_root (rootfd, *buf ? buf : "/", O_PATH | O_DIRECTORY, 0);
          if (parent < 0)
            return -1;
          if (mkdirat (parent, base + 1, 0755) < 0 && errno != EEXIST)
            return -1;
          n = readlinkat (parent, base + 1, link, sizeof link - 1);
          if (n > 0)
            {
              /* A dangling symlink: create its target, then the rest. */
              link[n] = '\0';
              snprintf (next, sizeof next, "%s%s%s%s%s", link[0] == '/' ? "" : (*buf ? buf : ""),
                        link[0] == '/' ? "" : "/", link, saved ? "/" : "", saved ? slash + 1 : "");
              return mkdir_in_root_depth (rootfd, next, depth + 1);
            }
          *base = '/';
          fd = open_in_root (rootfd, buf, O_PATH | O_DIRECTORY, 0);
        }
      *slash = saved;
      if (fd < 0 || saved == '\0')
        return fd;
      close (fd);
    }
}

static int
mkdir_in_root (int rootfd, const char *path)
{
  return mkdir_in_root_depth (rootfd, path, 0);
}

/* The mount point for dest: a directory, or an empty file when a file is
 * to be bind-mounted on it.  Returns an O_PATH fd. */
static int
make_target (int rootfd, const char *dest, int want_dir)
{
  char parent[PATH_MAX], base[PATH_MAX];
  int fd = open_in_root (rootfd, dest, O_PATH, 0);
  if (fd >= 0 || errno != ENOENT)
    return fd;
  if (want_dir)
    return mkdir_in_root (rootfd, dest);

  snprintf (parent, sizeof parent, "%s", dest);
  snprintf (base, sizeof base, "%s", dest);
  cleanup_close int pfd = mkdir_in_root (rootfd, dirname (parent));
  if (pfd < 0)
    return -1;
  int f = openat (pfd, basename (base), O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW | O_CLOEXEC, 0644);
  if (f < 0 && errno != EEXIST)
    return -1;
  if (f >= 0)
    close (f);
  return open_in_root (rootfd, dest, O_PATH, 0);
}

/* Detail the kernel left in an fs context ("e Bad value for 'mode'"). */
static const char *
fs_context_message (int fsfd, char *buf, size_t size)
{
  ssize_t n = read (fsfd, buf, size - 1);
  if (n <= 2)
    return "";
  buf[n] = '\0';
  if (buf[n - 1] == '\n')
    buf[n - 1] = '\0';
  return buf + 2;
}

/* A new filesystem instance: fsopen + fsconfig per option + fsmount. */
static int
new_fs_mount (struct mount_entry *m, const struct mount_attr *attr)
{
  char msg[256];
  cleanup_close int fsfd = fsopen (m->type, FSOPEN_CLOEXEC);
  if (fsfd < 0)
    die (errno, "mount", "fsopen %s for %s", m->type, m->dest);
  if (m->source && *m->source && fsconfig (fsfd, FSCONFIG_SET_STRING, "source", m->source, 0) < 0)
    die (errno, "mount", "%s on %s: source %s", m->type, m->dest, m->source);

  if (m->data && *m->data)
    {
      char *opts = strdup (m->data), *save = NULL;
      for (char *opt = strtok_r (opts, ",", &save); opt; opt = strtok_r (NULL, ",", &save))
        {
          char *eq = strchr (opt, '=');
          int r;
          if (eq)
            {
              *eq = '\0';
              r = fsconfig (fsfd, FSCONFIG_SET_STRING, opt, eq + 1, 0);
            }
          else
            r = fsconfig (fsfd, FSCONFIG_SET_FLAG, opt, NULL, 0);
          if (r < 0)
            die (errno, "mount", "%s on %s: option %s%s%s %s", m->type, m->dest, opt,
                 eq ? "=" : "", eq ? eq + 1 : "", fs_context_message (fsfd, msg, sizeof msg));
        }
      free (opts);
    }
  if (fsconfig (fsfd, FSCONFIG_CMD_CREATE, NULL, NULL, 0) < 0)
    die (errno, "mount", "%s on %s %s", m->type, m->dest, fs_context_message (fsfd, msg, sizeof msg));
  int mfd = fsmount (fsfd, FSMOUNT_CLOEXEC, attr->attr_set);
  if (mfd < 0)
    die (errno, "mount", "fsmount %s on %s", m->type, m->dest);
  return mfd;
}

/* A directory still to copy, relative to the tops of both trees. */
struct pending
{
  char *rel;
  struct pending *next;
};

/* Open rel below top, never through a symlink or out of top. */
static int
open_dir_beneath (int top, const char *rel)
{
  struct open_how how = {
    .flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
  };
  return syscall (SYS_openat2, top, rel, &how, sizeof how);
}

/* Copy the tree under src into dst (both directory fds), keeping modes
 * and owners; symlinks are copied as links, never followed.  Iterative,
 * with the directories to visit on a heap list and two fds open at a
 * time: an image's tree may be deeper than husk-init's stack (a frame per
 * level overflowed it at ~130) or its fd limit. */
static void
copy_tree (int src_top, int dst_top, const char *where)
{
  static char buf[65536];
  struct pending *todo = calloc (1, sizeof *todo);
  if (todo == NULL || (todo->rel = strdup (".")) == NULL)
    die (ENOMEM, "tmpcopyup", "%s", where);
  while (todo)
    {
      struct pending *cur = todo;
      todo = cur->next;
      cleanup_close int src = open_dir_beneath (src_top, cur->rel);
      cleanup_close int dst = open_dir_beneath (dst_top, cur->rel);
      if (src < 0 || dst < 0)
        die (errno, "tmpcopyup", "open %s/%s", where, cur->rel);
      int dfd = dup (src);
      DIR *dir = dfd >= 0 ? fdopendir (dfd) : NULL;
      struct dirent *e;
      if (dir == NULL)
        die (errno, "tmpcopyup", "read %s/%s", where, cur->rel);
      while ((e = readdir (dir)) != NULL)
        {
          struct stat st;
          if (strcmp (e->d_name, ".") == 0 || strcmp (e->d_name, "..") == 0)
            continue;
          if (fstatat (src, e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            die (errno, "tmpcopyup", "stat %s/%s/%s", where, cur->rel, e->d_name);
          if (S_ISDIR (st.st_mode))
            {
              if (mkdirat (dst, e->d_name, st.st_mode & 07777) < 0)
                die (errno, "tmpcopyup", "mkdir %s/%s/%s", where, cur->rel, e->d_name);
              struct pending *next = calloc (1, sizeof *next);
              if (next == NULL || asprintf (&next->rel, "%s/%s", cur->rel, e->d_name) < 0)
                die (ENOMEM, "tmpcopyup", "%s", where);
              next->next = todo;
              todo = next;
            }
          else if (S_ISLNK (st.st_mode))
            {
              char target[PATH_MAX];
              ssize_t n = readlinkat (src, e->d_name, target, sizeof target - 1);
              if (n < 0)
                die (errno, "tmpcopyup", "readlink %s/%s/%s", where, cur->rel, e->d_name);
              target[n] = '\0';
              if (symlinkat (target, dst, e->d_name) < 0)
                die (errno, "tmpcopyup", "symlink %s/%s/%s", where, cur->rel, e->d_name);
            }
          else if (S_ISREG (st.st_mode))
            {
              cleanup_close int in = openat (src, e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
              cleanup_close int out
                  = openat (dst, e->d_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, st.st_mode & 07777);
              ssize_t n;
              if (in < 0 || out < 0)
                die (errno, "tmpcopyup", "copy %s/%s/%s", where, cur->rel, e->d_name);
              while ((n = read (in, buf, sizeof buf)) > 0)
                if (write_all (out, buf, n) < 0)
                  die (errno, "tmpcopyup", "write %s/%s/%s", where, cur->rel, e->d_name);
              if (n < 0)
                die (errno, "tmpcopyup", "read %s/%s/%s", where, cur->rel, e->d_name);
            }
          else if (mknodat (dst, e->d_name, st.st_mode, st.st_rdev) < 0)
            die (errno, "tmpcopyup", "mknod %s/%s/%s", where, cur->rel, e->d_name);
          if (fchownat (dst, e->d_name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW) < 0)
            die (errno, "tmpcopyup", "chown %s/%s/%s", where, cur->rel, e->d_name);
          if (!S_ISLNK (st.st_mode) && fchmodat (dst, e->d_name, st.st_mode & 07777, 0) < 0)
            die (errno, "tmpcopyup", "chmod %s/%s/%s", where, cur->rel, e->d_name);
        }
      closedir (dir);
      free (cur->rel);
      free (cur);
    }
}

static void
do_mount (int rootfd, struct mount_entry *m)
{
  int is_bind = (m->flags & MS_BIND) != 0, rec = (m->flags & MS_REC) != 0;
  int want_dir = 1, tree;
  struct mount_attr attr;
  struct stat st;

  attrs_from_flags (m->flags, &attr);
  if (m->flags & MS_REMOUNT)
    {
      /* Change the flags of a mount made earlier in the list. */
      cleanup_close int fd = open_in_root (rootfd, m->dest, O_PATH, 0);
      if (fd < 0 || mount_setattr (fd, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
        die (errno, "mount", "remount %s", m->dest);
      TRACE ("mounts", "remount", "mount_setattr(\"%s\", set %#llx, clear %#llx): remount with %s", m->dest,
             (unsigned long long) attr.attr_set, (unsigned long long) attr.attr_clr, trace_mount_flags (m->flags));
      return;
    }
  if (is_bind)
    {
      /* open_tree clones the source (recursively for rbind) as a detached
       * tree; its flags are set before it is attached, so there is no
       * window where a read-only bind is writable. */
      if (stat (m->source, &st) < 0)
        die (errno, "mount", "bind source %s for %s", m->source, m->dest);
      want_dir = S_ISDIR (st.st_mode);
      tree = open_tree (AT_FDCWD, m->source, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | (rec ? AT_RECURSIVE : 0));
      if (tree < 0)
        die (errno, "mount", "bind %s on %s", m->source, m->dest);
      if ((attr.attr_set || attr.attr_clr)
          && mount_setattr (tree, "", AT_EMPTY_PATH | (rec ? AT_RECURSIVE : 0), &attr, sizeof attr) < 0)
        die (errno, "mount", "set options of bind %s on %s", m->source, m->dest);
    }
  else
    tree = new_fs_mount (m, &attr);

  if (m->propagation)
    {
      struct mount_attr prop = { .propagation = m->propagation & ~MS_REC };
      if (mount_setattr (tree, "", AT_EMPTY_PATH | ((m->propagation & MS_REC) ? AT_RECURSIVE : 0),
                         &prop, sizeof prop) < 0)
        die (errno, "mount", "set propagation of %s", m->dest);
    }

  cleanup_close int target = make_target (rootfd, m->dest, want_dir);
  if (target < 0)
    die (errno, "mount", "create mount point %s in the rootfs", m->dest);
  if (m->copyup)
    {
      /* The detached tmpfs is still ours alone: fill it with what the
       * image has there, then attach it (podman's tmpcopyup). */
      cleanup_close int from = open_in_root (rootfd, m->dest, O_RDONLY | O_DIRECTORY, 0);
      cleanup_close int into = openat (tree, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
      if (from < 0 || into < 0)
        die (errno, "tmpcopyup", "open %s", m->dest);
      copy_tree (from, into, m->dest);
    }
  /* move_mount onto the fd: the kernel attaches exactly where we resolved. */
  if (move_mount (tree, "", target, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    die (errno, "mount", "%s on %s", m->source ? m->source : m->type, m->dest);
  close (tree);
  if (is_bind)
    TRACE ("mounts", "mount", "open_tree(\"%s\", OPEN_TREE_CLONE%s) + move_mount(-> \"%s\"): bind, %s%s%s",
           m->source, rec ? "|AT_RECURSIVE" : "", m->dest, trace_mount_flags (m->flags),
           m->propagation ? ", propagation " : "", m->propagation ? trace_mount_flags (m->propagation) : "");
  else
    TRACE ("mounts", "mount",
           "fsopen(\"%s\") + fsconfig(source \"%s\"%s%s) + fsmount + move_mount(-> \"%s\"): %s%s%s%s", m->type,
           m->source ? m->source : m->type, m->data && *m->data ? ", " : "", m->data ? m->data : "", m->dest,
           trace_mount_flags (m->flags), m->propagation ? ", propagation " : "",
           m->propagation ? trace_mount_flags (m->propagation) : "",
           m->copyup ? ", filled from the image (tmpcopyup)" : "");
}

/* One device node: mknod, or (in a user namespace, where mknod is not
 * allowed) a bind of the host's node onto an empty file. */
static void
make_device (int rootfd, const char *path, mode_t mode, dev_t rdev, uid_t uid, gid_t gid, int in_userns)
{
  char parent[PATH_MAX], base[PATH_MAX];
  snprintf (parent, sizeof parent, "%s", path);
  snprintf (base, sizeof base, "%s", path);
  cleanup_close int pfd = mkdir_in_root (rootfd, dirname (parent));
  const char *name = basename (base);

  if (pfd < 0)
    die (errno, "create device", "%s: parent directory", path);
  if (unlinkat (pfd, name, 0) < 0 && errno != ENOENT)
    die (errno, "create device", "%s: remove what is there", path);
  if (in_userns)
    {
      struct mount_entry m = { .source = (char *) path, .dest = (char *) path, .flags = MS_BIND };
      do_mount (rootfd, &m);
      TRACE ("devices", "device", "%s: bind of the host's node (mknod is refused in a user namespace)", path);
      return;
    }
  if (mknodat (pfd, name, mode, rdev) < 0)
    die (errno, "create device", "mknod %s", path);
  if (fchmodat (pfd, name, mode & 07777, 0) < 0)
    die (errno, "create device", "chmod %s", path);
  if (fchownat (pfd, name, uid, gid, AT_SYMLINK_NOFOLLOW) < 0)
    die (errno, "create device", "chown %s", path);
  TRACE ("devices", "device", "mknodat(\"%s\", %s|%04o, makedev(%u, %u)); chown %u:%u", path,
         S_ISCHR (mode) ? "S_IFCHR" : S_ISBLK (mode) ? "S_IFBLK" : "S_IFIFO", mode & 07777, major (rdev), minor (rdev),
         uid, gid);
}

/* The runtime-spec default devices and /dev links, on a fresh /dev. */
static void
default_devices (int rootfd, int in_userns)
{
  static const struct { const char *path; unsigned major, minor; } devs[] = {
    { "/dev/null", 1, 3 }, { "/dev/zero", 1, 5 },    { "/dev/full", 1, 7 },
    { "/dev/random", 1, 8 }, { "/dev/urandom", 1, 9 }, { "/dev/tty", 5, 0 },
  };
  static const struct { const char *target, *name; } links[] = {
    { "/proc/self/fd", "fd" },     { "/proc/self/fd/0", "stdin" },
    { "/proc/self/fd/1", "stdout" }, { "/proc/self/fd/2", "stderr" },
    { "pts/ptmx", "ptmx" },
  };
  for (size_t i = 0; i < sizeof devs / sizeof *devs; i++)
    make_device (rootfd, devs[i].path, S_IFCHR | 0666, makedev (devs[i].major, devs[i].minor), 0, 0,
                 in_userns);

  cleanup_close int devfd = open_in_root (rootfd, "/dev", O_PATH | O_DIRECTORY, 0);
  if (devfd < 0)
    die (errno, "create device", "/dev");
  for (size_t i = 0; i < sizeof links / sizeof *links; i++)
    {
      if (unlinkat (devfd, links[i].name, 0) < 0 && errno != ENOENT)
        die (errno, "create device", "remove /dev/%s", links[i].name);
      if (symlinkat (links[i].target, devfd, links[i].name) < 0)
        die (errno, "create device", "symlink /dev/%s", links[i].name);
      TRACE ("devices", "symlink", "symlinkat(\"%s\", /dev/%s)", links[i].target, links[i].name);
    }
}

/* The mount point of the mount that holds path: the longest mount point
 * in mountinfo that is path or a parent directory of it. */
static void
make_parent_mount_private (const char *rootfs)
{
  char real[PATH_MAX], best[PATH_MAX] = "/", line[8192];
  if (realpath (rootfs, real) == NULL)
    die (errno, "mount", "resolve rootfs %s", rootfs);
  FILE *f = fopen ("/proc/self/mountinfo", "re");
  if (f == NULL)
    die (errno, "mount", "read /proc/self/mountinfo");
  size_t best_len = 1;
  while (fgets (line, sizeof line, f))
    {
      char point[PATH_MAX], decoded[PATH_MAX];
      if (sscanf (line, "%*d %*d %*s %*s %4095s", point) != 1)
        continue;
      /* mountinfo escapes space, tab, newline and backslash as \ooo */
      size_t j = 0;
      for (size_t i = 0; point[i] && j < sizeof decoded - 1; i++)
        if (point[i] == '\\' && point[i + 1] && point[i + 2] && point[i + 3])
          {
            decoded[j++] = (char) ((point[i + 1] - '0') * 64 + (point[i + 2] - '0') * 8 + (point[i + 3] - '0'));
            i += 3;
          }
        else
          decoded[j++] = point[i];
      decoded[j] = '\0';
      size_t n = strlen (decoded);
      if (n >= best_len && strncmp (real, decoded, n) == 0 && (real[n] == '/' || real[n] == '\0' || n == 1))
        {
          memcpy (best, decoded, n + 1);
          best_len = n;
        }
    }
  fclose (f);
  if (mount (NULL, best, NULL, MS_PRIVATE, NULL) < 0)
    die (errno, "mount", "make %s (the mount holding the rootfs) private", best);
}

int
rootfs_prepare (struct plan *p, int in_userns)
{
  /* Our mount namespace is a copy of the host's: stop mount events from
   * travelling back to the host (rslave by default, like runc). */
  if (mount (NULL, "/", NULL, MS_REC | (p->rootfs_propagation ? p->rootfs_propagation : MS_SLAVE), NULL) < 0)
    die (errno, "mount", "set propagation of /");
  TRACE ("mounts", "propagation", "mount(NULL, \"/\", NULL, %s, NULL)",
         trace_mount_flags (MS_REC | (p->rootfs_propagation ? p->rootfs_propagation : MS_SLAVE)));
  /* With rootfsPropagation shared, the mount holding the rootfs is now a
   * peer of the host's: our bind of the rootfs (and every mount on it)
   * would propagate to the host and stay there, and pivot_root refuses a
   * shared parent.  With unbindable, the bind of the rootfs below fails
   * (EINVAL: an unbindable mount cannot be the source of a bind).  In
   * both cases make that one mount private, as runc's
   * rootfsParentMountPrivate does; "/" gets the asked-for propagation
   * back after pivot_root (rootfs_pivot). */
  if (p->rootfs_propagation & (MS_SHARED | MS_UNBINDABLE))
    make_parent_mount_private (p->rootfs);

  /* pivot_root needs the new root to be a mount point: bind it on itself. */
  int tree = open_tree (AT_FDCWD, p->rootfs, OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE);
  if (tree < 0)
    die (errno, "mount", "bind rootfs %s", p->rootfs);
  if (move_mount (tree, "", AT_FDCWD, p->rootfs, MOVE_MOUNT_F_EMPTY_PATH) < 0)
    die (errno, "mount", "bind rootfs %s on itself", p->rootfs);
  close (tree);
  TRACE ("rootfs", "rootfs", "open_tree(\"%s\", OPEN_TREE_CLONE|AT_RECURSIVE) + move_mount onto itself", p->rootfs);
  int rootfd = open (p->rootfs, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (rootfd < 0)
    die (errno, "open rootfs", "%s", p->rootfs);

  for (size_t i = 0; i < p->nmounts; i++)
    do_mount (rootfd, &p->mounts[i]);
  /* Like runc, a missing process.cwd is created (inside the rootfs);
   * if that fails, the chdir after pivot_root reports why. */
  if (p->cwd && strcmp (p->cwd, "/") != 0)
    {
      int cwd = mkdir_in_root (rootfd, p->cwd);
      if (cwd >= 0)
        close (cwd);
    }
  if (p->default_devices)
    default_devices (rootfd, in_userns);
  for (size_t i = 0; i < p->ndevices; i++)
    {
      struct device_entry *d = &p->devices[i];
      make_device (rootfd, d->path, d->mode, d->rdev, d->uid, d->gid, in_userns);
    }
  return rootfd;
}

static void
write_sysctls (struct plan *p, int rootfd)
{
  if (p->nsysctls == 0)
    return;
  /* Writes through a fake /proc would land anywhere (CVE-2025-52881):
   * insist the proc/sys we write to is procfs. */
  cleanup_close int sysfd = open_in_root (rootfd, "/proc/sys", O_PATH | O_DIRECTORY, RESOLVE_NO_SYMLINKS);
  struct statfs sfs;
  if (sysfd < 0 || fstatfs (sysfd, &sfs) < 0)
    die (errno, "sysctl", "open /proc/sys in the container");
  if (sfs.f_type != PROC_SUPER_MAGIC)
    die (EINVAL, "sysctl", "/proc/sys in the container is not procfs");
  for (size_t i = 0; i < p->nsysctls; i++)
    {
      char rel[PATH_MAX];
      snprintf (rel, sizeof rel, "%s", p->sysctls[i].key);
      for (char *c = rel; *c; c++)
        if (*c == '.')
          *c = '/';
      cleanup_close int fd = open_in_root (sysfd, rel, O_WRONLY, RESOLVE_NO_SYMLINKS);
      if (fd < 0 || write_all (fd, p->sysctls[i].value, strlen (p->sysctls[i].value)) < 0)
        die (errno, "sysctl", "%s=%s", p->sysctls[i].key, p->sysctls[i].value);
      TRACE ("sysctl", "sysctl", "write /proc/sys/%s: %s", rel, p->sysctls[i].value);
    }
}

/* readonlyPaths: a read-only bind of the path on itself. */
static void
readonly_path (int rootfd, const char *path)
{
  cleanup_close int fd = open_in_root (rootfd, path, O_PATH, RESOLVE_NO_SYMLINKS);
  if (fd < 0 && errno == ENOENT)
    return;
  if (fd < 0)
    die (errno, "readonly path", "%s", path);
  int tree = open_tree (fd, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH | AT_RECURSIVE);
  struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
                                         | MOUNT_ATTR_NOEXEC };
  if (tree < 0 || mount_setattr (tree, "", AT_EMPTY_PATH | AT_RECURSIVE, &attr, sizeof attr) < 0
      || move_mount (tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    die (errno, "readonly path", "%s", path);
  close (tree);
  TRACE ("mounts", "readonly",
         "open_tree(\"%s\", OPEN_TREE_CLONE) + mount_setattr(MOUNT_ATTR_RDONLY|NOSUID|NODEV|NOEXEC) + move_mount onto "
         "itself", path);
}

/* maskedPaths: /dev/null over a file, an empty read-only tmpfs over a
 * directory.  devnull is the host's /dev/null, checked to be 1:3, so the
 * container cannot swap the mask's source (CVE-2025-31133). */
static void
mask_path (int rootfd, const char *path, int devnull)
{
  struct stat st;
  int tree;
  cleanup_close int fd = open_in_root (rootfd, path, O_PATH, RESOLVE_NO_SYMLINKS);
  if (fd < 0 && errno == ENOENT)
    return;
  if (fd < 0 || fstat (fd, &st) < 0)
    die (errno, "masked path", "%s", path);
  if (S_ISDIR (st.st_mode))
    {
      struct mount_entry m = { .type = "tmpfs", .dest = (char *) path, .data = "size=0,mode=0555" };
      struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
                                             | MOUNT_ATTR_NOEXEC };
      tree = new_fs_mount (&m, &attr);
    }
  else
    tree = open_tree (devnull, "", OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_EMPTY_PATH);
  if (tree < 0 || move_mount (tree, "", fd, "", MOVE_MOUNT_F_EMPTY_PATH | MOVE_MOUNT_T_EMPTY_PATH) < 0)
    die (errno, "masked path", "%s", path);
  close (tree);
  TRACE ("mounts", "masked", "%s over \"%s\"",
         S_ISDIR (st.st_mode) ? "an empty read-only tmpfs" : "the host's /dev/null", path);
}

void
rootfs_finalize (struct plan *p, int rootfd)
{
  write_sysctls (p, rootfd);
  for (size_t i = 0; i < p->nreadonly; i++)
    readonly_path (rootfd, p->readonly[i]);

  if (p->nmasked)
    {
      struct stat st;
      cleanup_close int devnull = open ("/dev/null", O_PATH | O_CLOEXEC);
      if (devnull < 0 || fstat (devnull, &st) < 0)
        die (errno, "masked path", "open the host's /dev/null");
      if (!S_ISCHR (st.st_mode) || st.st_rdev != makedev (1, 3))
        die (EINVAL, "masked path", "the host's /dev/null is not the null device");
      for (size_t i = 0; i < p->nmasked; i++)
        mask_path (rootfd, p->masked[i], devnull);
    }

  if (p->root_readonly)
    {
      struct mount_attr attr = { .attr_set = MOUNT_ATTR_RDONLY };
      if (mount_setattr (rootfd, "", AT_EMPTY_PATH, &attr, sizeof attr) < 0)
        die (errno, "mount", "remount / read-only");
      TRACE ("rootfs", "root_readonly", "mount_setattr(rootfs, MOUNT_ATTR_RDONLY)");
    }
}

void
rootfs_pivot (struct plan *p, int rootfd)
{
  if (fchdir (rootfd) < 0)
    die (errno, "pivot_root", "chdir into %s", p->rootfs);
  if (p->no_pivot)
    {
      /* For a rootfs on a ramfs, where pivot_root is refused. */
      if (mount (".", "/", NULL, MS_MOVE, NULL) < 0)
        die (errno, "pivot_root", "move %s to /", p->rootfs);
      if (chroot (".") < 0)
        die (errno, "pivot_root", "chroot");
      TRACE ("rootfs", "chroot", "mount(\".\", \"/\", MS_MOVE) + chroot(\".\") (--no-pivot)");
    }
  else
    {
      /* pivot_root(".", ".") stacks the old root under the new one at "/";
       * detaching it leaves only the container's tree (no put_old dir). */
      if (syscall (SYS_pivot_root, ".", ".") < 0)
        die (errno, "pivot_root", "%s", p->rootfs);
      TRACE ("rootfs", "pivot_root", "pivot_root(\".\", \".\") in %s", p->rootfs);
      if (mount (NULL, ".", NULL, MS_SLAVE | MS_REC, NULL) < 0)
        die (errno, "pivot_root", "make the old root a slave");
      if (umount2 (".", MNT_DETACH) < 0)
        die (errno, "pivot_root", "detach the old root");
      TRACE ("rootfs", "umount_old_root", "mount(NULL, \".\", MS_SLAVE|MS_REC) + umount2(\".\", MNT_DETACH)");
    }
  if (chdir ("/") < 0)
    die (errno, "pivot_root", "chdir /");
  /* rootfsPropagation is for the container's "/": set it on the new root
   * now (runc does the same after pivot_root).  This root was made in our
   * namespace from a private parent, so "shared" peers only with mounts
   * inside the container, never with the host's. */
  if (p->rootfs_propagation && mount (NULL, "/", NULL, p->rootfs_propagation, NULL) < 0)
    die (errno, "mount", "set rootfsPropagation of /");
}

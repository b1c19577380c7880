/* create.c - create and run from a recipe: cgroups, husk-init, state.
 *
 * The steps and their order are container.create's: state directory,
 * write-ahead state, cgroups made and limited, exec fifo, husk-init from
 * a sealed copy, joined to the cgroup before it gets its plan, followed
 * to READY, state and pid file.  Each step that made something is undone
 * if a later one fails.  What the steps write comes from the recipe.
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
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

int send_record (int fd, uint32_t tag, const void *value, uint32_t len);
int recv_record (int fd, uint32_t *tag, char **value, uint32_t *len);

#define HUSK_INIT HUSK_PURELIB "/runtime/_bin/husk-init"

struct create_opts
{
  const char *id, *pid_file, *console_socket, *preserve_flag;
  bool no_pivot, no_new_keyring, detach, keep;
  int preserve_fds;
  char bundle[PATH_MAX];
  /* run -t without --console-socket: our end and husk-init's of the
   * console socket, then the pty master received on it (console.c). */
  int proxy_local, proxy_remote, master;
  /* --explain under run: husk-init's socket, still open after READY for
   * the steps up to execve (drain_trace). */
  bool run;
  int trace_sock;
};

/* What a failed create must undo, newest last. */
static struct
{
  struct ctr c;
  bool have_dir;
  json_t *created; /* cgroup directories made so far */
  json_t *own;     /* of those, the container's own (the rest are parents) */
  char unit[256];  /* --systemd-cgroup: the unit asked for (it may exist) */
  pid_t helper, pid;
} undo = { .c = { .lock = -1 } };

static volatile sig_atomic_t interrupted;

static void
on_signal (int sig)
{
  interrupted = sig;
}

static void
undo_all (void)
{
  if (undo.pid > 0)
    {
      kill (undo.pid, SIGKILL);
      waitpid (undo.pid, NULL, 0);
    }
  if (undo.helper > 0)
    {
      kill (undo.helper, SIGKILL);
      waitpid (undo.helper, NULL, 0);
    }
  if (undo.unit[0])
    {
      struct husk_sd sd;
      if (husk_sd_connect (&sd) < 0 || husk_sd_stop_unit (&sd, undo.unit) < 0)
        report_warning_f ("%s", sd.error);
      husk_sd_close (&sd);
    }
  if (undo.created)
    remove_cgroups (undo.created, undo.own);
  if (undo.have_dir)
    ctr_remove (&undo.c);
}

/* Nothing the user can see was done yet: let Python do the whole create. */
__attribute__ ((noreturn)) static void
to_python (void)
{
  undo_all ();
  python ();
}

__attribute__ ((noreturn, format (printf, 1, 2))) static void
create_fail (const char *fmt, ...)
{
  va_list ap;
  undo_all ();
  va_start (ap, fmt);
  report_v (fmt, ap);
  va_end (ap);
  exit (1);
}

__attribute__ ((noreturn, format (printf, 2, 3))) static void
create_fail_with (int code, const char *fmt, ...)
{
  va_list ap;
  undo_all ();
  va_start (ap, fmt);
  report_v (fmt, ap);
  va_end (ap);
  exit (code);
}

static void
check_interrupt (void)
{
  if (interrupted)
    create_fail ("create %s: interrupted by %s", undo.c.id, interrupted == SIGTERM ? "SIGTERM" : "SIGHUP");
}

/* ---- the recipe cache ------------------------------------------------ */

struct buf
{
  char *data;
  size_t len, cap;
};

static void
put (struct buf *b, const void *data, size_t len)
{
  if (b->len + len > b->cap)
    {
      b->cap = (b->len + len) * 2 + 4096;
      b->data = realloc (b->data, b->cap);
      if (b->data == NULL)
        create_fail ("create: out of memory");
    }
  memcpy (b->data + b->len, data, len);
  b->len += len;
}

static void
putf (struct buf *b, const char *fmt, ...)
{
  char tmp[4096];
  va_list ap;
  va_start (ap, fmt);
  int n = vsnprintf (tmp, sizeof tmp, fmt, ap);
  va_end (ap);
  put (b, tmp, n < (int) sizeof tmp ? (size_t) n : sizeof tmp - 1);
  put (b, "", 1);
}

/* Everything planning reads, so a recipe is reused only where planning
 * would make the same one: husk's own build, the kernel and its cgroup
 * mounts, our credentials and limits, the flags, the root, and the
 * config's shape (instance.c: config.json without its per-container
 * values).  Stored whole in the cache entry and compared whole: the file
 * name is just its hash. */
static void
recipe_key (struct create_opts *o, struct instance *in, struct buf *key)
{
  struct stat self;
  struct utsname u;
  if (stat ("/proc/self/exe", &self) < 0 || uname (&u) < 0)
    to_python ();
  putf (key, "husk recipe %d", HUSK_RECIPE_VERSION);
  putf (key, "exe %lu %lu %ld.%ld %ld", (unsigned long) self.st_dev, (unsigned long) self.st_ino,
        (long) self.st_mtim.tv_sec, self.st_mtim.tv_nsec, (long) self.st_size);
  putf (key, "kernel %s %s", u.release, u.version);
  putf (key, "euid %d", geteuid ());
  for (int r = 0; r < RLIMIT_NLIMITS; r++)
    {
      struct rlimit rl;
      getrlimit (r, &rl);
      putf (key, "rlimit %d %llu", r, (unsigned long long) rl.rlim_max);
    }
  char *text = read_small ("/proc/sys/kernel/cap_last_cap", NULL, 64);
  putf (key, "cap_last_cap %s", text ? text : "?");
  free (text);
  text = read_small ("/proc/self/status", NULL, 1 << 16);
  char *capbnd = text ? strstr (text, "CapBnd:") : NULL;
  putf (key, "%.*s", capbnd ? (int) strcspn (capbnd, "\n") : 0, capbnd ? capbnd : "");
  free (text);
  /* The cgroup layout: every cgroup and cgroup2 mount (layout.detect). */
  text = read_small ("/proc/self/mountinfo", NULL, 16 << 20);
  if (text == NULL)
    to_python ();
  for (char *save, *line = strtok_r (text, "\n", &save); line; line = strtok_r (NULL, "\n", &save))
    if (strstr (line, " - cgroup ") || strstr (line, " - cgroup2 "))
      putf (key, "%s", strchr (line, ' ') ? strchr (line, ' ') : line);
  free (text);
  text = read_small ("/sys/fs/cgroup/cgroup.controllers", NULL, 4096);
  putf (key, "v2 controllers %s", text ? text : "");
  free (text);
  text = read_small ("/sys/fs/cgroup/unified/cgroup.controllers", NULL, 4096);
  putf (key, "hybrid controllers %s", text ? text : "");
  free (text);
  putf (key, "root %s", g.root);
  putf (key, "cgroup driver %s", g.systemd_cgroup ? "systemd" : "cgroupfs");
  putf (key, "flags %d %d %d %d", o->no_pivot, o->no_new_keyring, o->preserve_fds, o->console_socket != NULL);
  text = instance_shape (in);
  if (text == NULL)
    to_python ();
  put (key, text, strlen (text));
  free (text);
}

static uint64_t
fnv1a (const char *data, size_t len)
{
  uint64_t h = 0xcbf29ce484222325ULL;
  for (size_t i = 0; i < len; i++)
    h = (h ^ (unsigned char) data[i]) * 0x100000001b3ULL;
  return h;
}

/* The cache directory, made by and private to root: a recipe is code
 * husk runs as root, so nobody else may have written it. */
static bool
cache_dir_ok (void)
{
  struct stat st;
  if (mkdir (PLAN_CACHE, 0700) < 0 && errno != EEXIST)
    return false;
  return lstat (PLAN_CACHE, &st) == 0 && S_ISDIR (st.st_mode) && st.st_uid == geteuid () && !(st.st_mode & 077);
}

/* Whether V has one of the JSON types TYPES (husk_recipe.h). */
static bool
has_type (json_t *v, int types)
{
  return ((types & J_BOOL) && json_is_boolean (v)) || ((types & J_INT) && json_is_integer (v))
         || ((types & J_STRING) && json_is_string (v)) || ((types & J_ARRAY) && json_is_array (v))
         || ((types & J_OBJECT) && json_is_object (v)) || ((types & J_NULL) && json_is_null (v));
}

/* NULL if META has exactly husk_recipe.def's fields, each of its types;
 * else the key of the first that is off. */
static const char *
recipe_meta_problem (json_t *meta)
{
  if (!json_is_object (meta))
    return "meta";
  size_t counted[2] = { 0, 0 }; /* the top level's fields, the cgroup section's */
  for (size_t i = 0; i < husk_nrecipe_fields; i++)
    {
      const struct husk_recipe_field *f = &husk_recipe_fields[i];
      json_t *section = f->section[0] ? json_object_get (meta, f->section) : meta;
      if (!has_type (json_object_get (section, f->key), f->types))
        return f->key;
      counted[f->section[0] != '\0']++;
    }
  if (json_object_size (meta) != counted[0] || json_object_size (json_object_get (meta, "cgroup")) != counted[1])
    return "fields"; /* one husk_recipe.def does not declare */
  return NULL;
}

/* RECIPE's meta, if it is husk_recipe.def's; else NULL: not one to use. */
static json_t *
recipe_meta (const char *recipe, size_t len)
{
  uint32_t head_len;
  if (len < 4 || (memcpy (&head_len, recipe, 4), head_len > len - 4))
    return NULL;
  json_t *meta = json_loadb (recipe + 4, head_len, 0, NULL);
  if (recipe_meta_problem (meta) == NULL)
    return meta;
  json_decref (meta);
  return NULL;
}

/* A cached recipe for key and its meta, or NULL.  One that is not well
 * formed (cut short, or changed by hand) is removed, to be planned
 * afresh. */
static char *
cache_load (const char *path, struct buf *key, size_t *len, json_t **meta)
{
  size_t n;
  char *entry = read_small (path, &n, 128 << 20);
  if (entry == NULL)
    return NULL;
  uint64_t klen;
  if (n < sizeof klen || (memcpy (&klen, entry, sizeof klen), klen != key->len) || n < sizeof klen + klen
      || memcmp (entry + sizeof klen, key->data, klen) != 0)
    {
      free (entry);
      return NULL;
    }
  *len = n - sizeof klen - klen;
  memmove (entry, entry + sizeof klen + klen, *len);
  *meta = recipe_meta (entry, *len);
  if (*meta == NULL)
    {
      unlink (path);
      free (entry);
      return NULL;
    }
  return entry;
}

static void
cache_store (const char *path, struct buf *key, const char *recipe, size_t len)
{
  /* Bounded: past 256 entries the cache starts again. */
  DIR *d = opendir (PLAN_CACHE);
  if (d)
    {
      int count = 0;
      struct dirent *e;
      while ((e = readdir (d)) != NULL)
        count += e->d_name[0] != '.';
      if (count >= 256)
        {
          rewinddir (d);
          while ((e = readdir (d)) != NULL)
            if (e->d_name[0] != '.' || strncmp (e->d_name, ".lock.", 6) == 0)
              unlinkat (dirfd (d), e->d_name, 0);
        }
      closedir (d);
    }
  char tmp[PATH_MAX];
  snprintf (tmp, sizeof tmp, "%s/.tmp.%d", PLAN_CACHE, getpid ());
  int fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    return;
  uint64_t klen = key->len;
  bool ok = write (fd, &klen, sizeof klen) == sizeof klen && write (fd, key->data, key->len) == (ssize_t) key->len
            && write (fd, recipe, len) == (ssize_t) len;
  close (fd);
  if (!ok || rename (tmp, path) < 0)
    unlink (tmp);
}

/* Python plans the create (`husk create` with HUSK_RECIPE_FD): the
 * recipe comes back in a memfd.  Unfit configs go to Python whole;
 * a config error was reported by Python already: exit with its status. */
static char *
compile (struct create_opts *o, struct instance *in, size_t *len)
{
  int fd = memfd_create ("husk-recipe", MFD_CLOEXEC);
  if (fd < 0)
    to_python ();
  const char *argv[32];
  int n = 0;
  char fdtext[16], preserve[16];
  argv[n++] = HUSK_PYTHON;
  argv[n++] = "-I";
  argv[n++] = "-S";
  argv[n++] = "-c";
  argv[n++] = husk_entry;
  argv[n++] = "--root";
  argv[n++] = g.root;
  if (g.log)
    {
      argv[n++] = "--log";
      argv[n++] = g.log;
    }
  argv[n++] = "--log-format";
  argv[n++] = g.log_format;
  if (g.debug)
    argv[n++] = "--debug";
  if (g.systemd_cgroup)
    argv[n++] = "--systemd-cgroup";
  argv[n++] = "create";
  argv[n++] = "--bundle";
  argv[n++] = o->bundle;
  if (o->console_socket)
    {
      argv[n++] = "--console-socket";
      argv[n++] = o->console_socket;
    }
  if (o->no_pivot)
    argv[n++] = "--no-pivot";
  if (o->no_new_keyring)
    argv[n++] = "--no-new-keyring";
  snprintf (preserve, sizeof preserve, "%d", o->preserve_fds);
  argv[n++] = "--preserve-fds";
  argv[n++] = preserve;
  argv[n++] = o->id;
  argv[n] = NULL;
  pid_t child = fork ();
  if (child < 0)
    to_python ();
  if (child == 0)
    {
      int mine = fcntl (fd, F_DUPFD, 3 + o->preserve_fds + 8); /* not CLOEXEC: for the child */
      if (trace_fd >= 0)
        fcntl (trace_fd, F_SETFD, 0); /* planning adds its steps (runtime/core/trace.py) */
      snprintf (fdtext, sizeof fdtext, "%d", mine);
      setenv ("HUSK_RECIPE_FD", fdtext, 1);
      struct buf order = { 0 };
      for (size_t i = 0; i < in->nmounts; i++)
        {
          char number[32];
          snprintf (number, sizeof number, "%s%zu", i ? "," : "", in->order[i]);
          put (&order, number, strlen (number));
        }
      put (&order, "", 1);
      setenv ("HUSK_MOUNT_ORDER", order.data, 1); /* the ranks the recipe names mounts by */
      unsetenv ("LISTEN_FDS"); /* counted in --preserve-fds already */
      unsetenv ("LISTEN_PID");
      execv (HUSK_PYTHON, (char **) argv);
      _exit (127);
    }
  int status;
  while (waitpid (child, &status, 0) < 0)
    if (errno != EINTR)
      to_python ();
  check_interrupt ();
  if (WIFEXITED (status) && WEXITSTATUS (status) == HUSK_RECIPE_EXIT_UNFIT)
    to_python ();
  if (!WIFEXITED (status) || WEXITSTATUS (status) != 0)
    {
      undo_all ();
      exit (WIFEXITED (status) ? WEXITSTATUS (status) : 1);
    }
  struct stat st;
  if (fstat (fd, &st) < 0)
    to_python ();
  char *recipe = malloc (st.st_size + 1);
  if (recipe == NULL || pread (fd, recipe, st.st_size, 0) != st.st_size)
    to_python ();
  close (fd);
  *len = st.st_size;
  return recipe;
}

/* ---- the per-container values in the plan ---------------------------- */

static void
put_record (struct buf *b, uint32_t tag, const char *text)
{
  uint32_t head[2] = { tag, (uint32_t) strlen (text) };
  put (b, head, 8);
  put (b, text, head[1]);
}

/* One record of a plan: its tag, and where its value lies. */
struct record
{
  uint32_t tag, len;
  const char *value;
};

static bool
is_mount_record (uint32_t tag)
{
  return tag >= PLAN_MOUNT_BEGIN && tag <= PLAN_MOUNT_COPYUP;
}

/* The records that hold only per-container values, before PLAN_END:
 * those husk_recipe.def fills in as ADDED, each from its field. */
static void
put_container_values (struct buf *b, json_t *meta, struct instance *in, struct ctr *c)
{
  json_t *process = json_object_get (in->config, "process");
  put_record (b, PLAN_ROOTFS, in->rootfs);
  json_t *hostname = json_object_get (in->config, "hostname");
  if (json_is_string (hostname))
    put_record (b, PLAN_HOSTNAME, json_string_value (hostname));
  json_t *list = json_object_get (process, "args");
  for (size_t i = 0; i < json_array_size (list); i++)
    put_record (b, PLAN_ARG, json_string_value (json_array_get (list, i)));
  list = json_object_get (process, "env");
  for (size_t i = 0; i < json_array_size (list); i++)
    put_record (b, PLAN_ENV, json_string_value (json_array_get (list, i)));
  put_record (b, PLAN_EXEC_FIFO, c->fifo);
  if (json_is_true (json_object_get (meta, "session_keyring")))
    {
      char name[PATH_MAX];
      snprintf (name, sizeof name, "_ses.%s", c->id); /* runc's name for it */
      put_record (b, PLAN_SESSION_KEYRING, name);
    }
  const char *bpf_dir = json_string_value (json_object_get (json_object_get (meta, "cgroup"), "device_bpf_cgroup"));
  if (bpf_dir)
    put_record (b, PLAN_DEVICE_BPF_CGROUP, bpf_dir);
}

/* The recipe's mounts, in this config's order: each plan mount (a group
 * of records from PLAN_MOUNT_BEGIN on) comes from the config mount of
 * rank meta["mount_ranks"][m] (instance.c's canonical order), with its
 * source filled in where meta["mount_sources"][m] names a slot. */
static void
put_mounts (struct buf *b, struct record *recs, size_t first, size_t end, json_t *meta, struct instance *in,
            struct ctr *c)
{
  json_t *ranks = json_object_get (meta, "mount_ranks"), *sources = json_object_get (meta, "mount_sources");
  const char *cgroup_path = json_string_value (json_object_get (json_object_get (meta, "cgroup"), "path"));
  size_t groups = json_array_size (ranks), *start = calloc (groups + 1, sizeof *start), g = 0;
  for (size_t i = first; start && i < end; i++)
    if (recs[i].tag == PLAN_MOUNT_BEGIN && g < groups)
      start[g++] = i;
  if (start == NULL || g != groups)
    create_fail ("create %s: a corrupt recipe in %s", c->id, PLAN_CACHE);
  start[groups] = end;
  for (size_t index = 0; index < in->nmounts; index++)
    for (g = 0; g < groups; g++)
      {
        if (mount_index (in, json_array_get (ranks, g)) != index)
          continue;
        for (size_t i = start[g]; i < start[g + 1]; i++)
          {
            json_t *slot = json_array_get (sources, g);
            if (recs[i].tag == PLAN_MOUNT_SOURCE && json_is_array (slot))
              {
                char path[PATH_MAX];
                const char *source = instance_mount_source (in, slot, cgroup_path, path);
                if (source == NULL)
                  to_python ();
                put_record (b, PLAN_MOUNT_SOURCE, source);
                continue;
              }
            uint32_t head[2] = { recs[i].tag, recs[i].len };
            put (b, head, 8);
            put (b, recs[i].value, recs[i].len);
          }
      }
  free (start);
}

/* The recipe's plan with this container's values as typed fields
 * (runtime/core/recipe.py): its mounts laid out in this config's order
 * with their sources, joined namespaces' paths filled in where the
 * recipe names their slot, and the records that hold only per-container
 * values added before PLAN_END. */
static char *
fill_plan (const char *plan, size_t len, json_t *meta, struct instance *in, struct ctr *c, size_t *out_len)
{
  size_t n = 0, cap = 64;
  struct record *recs = malloc (cap * sizeof *recs);
  for (size_t off = 0; recs && off + 8 <= len; n++)
    {
      uint32_t head[2];
      memcpy (head, plan + off, 8);
      off += 8;
      if (head[1] > len - off)
        create_fail ("create %s: a corrupt recipe in %s", c->id, PLAN_CACHE);
      if (n == cap)
        recs = realloc (recs, (cap *= 2) * sizeof *recs);
      if (recs)
        recs[n] = (struct record) { head[0], head[1], plan + off };
      off += head[1];
    }
  if (recs == NULL)
    create_fail ("create: out of memory");
  json_t *joins = json_object_get (meta, "join_paths");
  struct buf b = { 0 };
  size_t join = 0;
  for (size_t i = 0; i < n; i++)
    {
      if (recs[i].tag == PLAN_MOUNT_BEGIN)
        {
          size_t end = i;
          while (end < n && is_mount_record (recs[end].tag))
            end++;
          put_mounts (&b, recs, i, end, meta, in, c);
          i = end - 1;
          continue;
        }
      const struct husk_per_container *value = husk_per_container_of (recs[i].tag);
      if (value && value->how == HUSK_FILL_ADDED)
        create_fail ("create %s: a corrupt recipe in %s", c->id, PLAN_CACHE); /* holds one container's value */
      if (recs[i].tag == PLAN_NS_JOIN_PATH)
        {
          const char *ns = instance_join_path (in, json_integer_value (json_array_get (joins, join++)));
          if (ns == NULL)
            to_python ();
          put_record (&b, PLAN_NS_JOIN_PATH, ns);
          continue;
        }
      if (recs[i].tag == PLAN_END)
        put_container_values (&b, meta, in, c);
      uint32_t head[2] = { recs[i].tag, recs[i].len };
      put (&b, head, 8);
      put (&b, recs[i].value, recs[i].len);
    }
  free (recs);
  *out_len = b.len;
  return b.data;
}

/* The recipe's cgroup section for this container: its path (cgroupsPath,
 * or the default parent and the id), and each placement's directory -
 * its hierarchy's base and the path - where the recipe names placements
 * by index.  After this the section reads as container.create's. */
static bool
place_cgroup (json_t *cg, struct instance *in, const char *id)
{
  char path[PATH_MAX];
  json_t *parent = json_object_get (cg, "default_parent");
  json_t *systemd = json_object_get (cg, "systemd");
  bool absolute = in->cgroup_path[0] == '/';
  if (json_is_object (systemd) != g.systemd_cgroup)
    return false;
  if (g.systemd_cgroup)
    {
      /* The unit's cgroup: its slice's, expanded, and the unit's name. */
      struct husk_sd_unit unit;
      char why[512];
      if (husk_sd_unit_of (in->cgroup_path, id, &unit, why, sizeof why) < 0)
        return false;
      snprintf (path, sizeof path, "%s", unit.path);
      json_object_set_new (systemd, "unit", json_string (unit.unit));
      json_object_set_new (systemd, "slice", json_string (unit.slice));
    }
  else if (json_is_string (parent) == absolute)
    return false; /* the recipe was planned for the other case */
  else if (absolute)
    snprintf (path, sizeof path, "%s", in->cgroup_path);
  else
    snprintf (path, sizeof path, "%s/%s", json_string_value (parent), in->cgroup_path[0] ? in->cgroup_path : id);
  json_object_set_new (cg, "path", json_string (path));
  json_t *placements = json_object_get (cg, "placements");
  json_t *dirs = json_array ();
  for (size_t i = 0; i < json_array_size (placements); i++)
    {
      json_t *p = json_array_get (placements, i);
      char dir[PATH_MAX + PATH_MAX / 2];
      snprintf (dir, sizeof dir, "%s%s", json_string_value (json_object_get (p, "base")), path);
      json_object_set_new (p, "dir", json_string (dir));
      json_array_append_new (dirs, json_string (dir));
    }
  const char *lists[] = { "writes", "device_writes" };
  for (int l = 0; l < 2; l++)
    {
      json_t *writes = json_object_get (cg, lists[l]);
      for (size_t i = 0; i < json_array_size (writes); i++)
        {
          json_t *w = json_array_get (writes, i);
          json_t *dir = json_array_get (dirs, json_integer_value (json_array_get (w, 0)));
          if (!dir)
            return false;
          json_array_set (w, 0, dir);
        }
    }
  const char *indexed[] = { "cpuset", "device_bpf_cgroup" };
  for (int f = 0; f < 2; f++)
    if (json_is_integer (json_object_get (cg, indexed[f])))
      json_object_set (cg, indexed[f], json_array_get (dirs, json_integer_value (json_object_get (cg, indexed[f]))));
  json_decref (dirs);
  return true;
}

/* ---- cgroups ------------------------------------------------------- */

static bool
is_dir (const char *path)
{
  struct stat st;
  return stat (path, &st) == 0 && S_ISDIR (st.st_mode);
}

static void
cgroup_write (const char *dir, const char *file, const char *value, const char *field, const char *shown)
{
  char path[PATH_MAX + 256];
  snprintf (path, sizeof path, "%s/%s", dir, file);
  if (write_text (path, value) == 0)
    {
      TRACE ("cgroups", "cgroup_write", "write %s: %s%s%s%s", path, value, field ? "  (config.json " : "",
             field ? field : "", field ? ")" : "");
      return;
    }
  /* kernfs answers EACCES, not ENOENT, to creating a file it lacks
   * (blkio.leaf_weight without CFQ, say). */
  if ((errno == ENOENT || (errno == EACCES && access (path, F_OK) < 0)) && field)
    create_fail ("config.json: %s: not supported here: the kernel has no %s", field, file);
  if (field)
    create_fail ("cgroup: %s: write %s to %s: %s", field, shown, path, strerror (errno));
  create_fail ("cgroup: write '%s' to %s: %s", value, path, strerror (errno));
}

/* The directories create would make: each missing leaf and its missing
 * ancestors (CgroupManager.planned), recorded before they are made. */
static json_t *
planned (json_t *placements)
{
  json_t *out = json_array ();
  for (size_t i = 0; i < json_array_size (placements); i++)
    {
      char d[PATH_MAX];
      snprintf (d, sizeof d, "%s", json_string_value (json_object_get (json_array_get (placements, i), "dir")));
      json_t *chain = json_array ();
      while (!is_dir (d) && strlen (d) > 1)
        {
          bool seen = false;
          for (size_t j = 0; j < json_array_size (out); j++)
            seen |= strcmp (json_string_value (json_array_get (out, j)), d) == 0;
          if (seen)
            break;
          json_array_insert_new (chain, 0, json_string (d));
          *strrchr (d, '/') = '\0';
        }
      json_array_extend (out, chain);
      json_decref (chain);
    }
  return out;
}

/* mkdir -p that records what it made; another container's delete may
 * remove a shared empty parent meanwhile: ENOENT means walk again. */
static void
make_dirs (const char *dir)
{
  for (int attempt = 0; attempt < 100; attempt++)
    {
      char d[PATH_MAX];
      snprintf (d, sizeof d, "%s", dir);
      size_t depth = 0;
      while (!is_dir (d) && strlen (d) > 1)
        {
          *strrchr (d, '/') = '\0';
          depth++;
        }
      bool again = false;
      for (; depth > 0; depth--)
        {
          d[strlen (d)] = '/'; /* the next component down, restored */
          if (mkdir (d, 0755) == 0)
            {
              json_array_append_new (undo.created, json_string (d));
              TRACE ("cgroups", "cgroup_mkdir", "mkdir %s", d);
            }
          else if (errno == ENOENT)
            {
              again = true;
              break;
            }
          else if (errno != EEXIST)
            create_fail ("cgroup: create %s: %s", d, strerror (errno));
        }
      if (!again)
        return;
    }
  create_fail ("cgroup: create %s: its parent keeps disappearing", dir);
}

/* v2: the controllers must be on in each ancestor's subtree_control. */
static void
enable_v2 (const char *unified, const char *path, json_t *enable)
{
  if (json_array_size (enable) == 0)
    return;
  char d[PATH_MAX], rel[PATH_MAX];
  snprintf (d, sizeof d, "%s", unified);
  snprintf (rel, sizeof rel, "%s", path);
  for (char *save, *part = strtok_r (rel, "/", &save); part; part = strtok_r (NULL, "/", &save))
    {
      char file[PATH_MAX + 32], missing[1024] = "";
      snprintf (file, sizeof file, "%s/cgroup.subtree_control", d);
      char *on = read_small (file, NULL, 4096);
      for (size_t i = 0; i < json_array_size (enable); i++)
        {
          const char *c = json_string_value (json_array_get (enable, i));
          char padded[256];
          snprintf (padded, sizeof padded, " %s ", c);
          char have[4200];
          snprintf (have, sizeof have, " %s ", on ? on : "");
          for (char *nl = strchr (have, '\n'); nl; nl = strchr (nl, '\n'))
            *nl = ' ';
          if (!strstr (have, padded))
            snprintf (missing + strlen (missing), sizeof missing - strlen (missing), "%s+%s", *missing ? " " : "", c);
        }
      free (on);
      if (*missing)
        cgroup_write (d, "cgroup.subtree_control", missing, NULL, NULL);
      snprintf (d + strlen (d), sizeof d - strlen (d), "/%s", part);
    }
}

/* v1: a new cpuset cgroup starts with no cpus and mems: copy the
 * nearest parent's value down the chain of empty ones. */
static void
inherit_cpuset (const char *dir)
{
  static const char *files[] = { "cpuset.cpus", "cpuset.mems" };
  for (int f = 0; f < 2; f++)
    {
      char chain[64][PATH_MAX];
      int n = 0;
      char d[PATH_MAX];
      snprintf (d, sizeof d, "%s", dir);
      char *value = NULL;
      for (;;)
        {
          char path[PATH_MAX + 32];
          snprintf (path, sizeof path, "%s/%s", d, files[f]);
          value = read_small (path, NULL, 4096);
          if (value == NULL || value[strspn (value, " \n")] != '\0' || n == 64 || strlen (d) <= 1)
            break;
          free (value);
          value = NULL;
          snprintf (chain[n++], PATH_MAX, "%s", d);
          *strrchr (d, '/') = '\0';
        }
      if (value == NULL)
        create_fail ("cgroup: read %s/%s: %s", d, files[f], strerror (errno));
      value[strcspn (value, "\n")] = '\0';
      while (n > 0)
        cgroup_write (chain[--n], files[f], value, NULL, NULL);
      free (value);
    }
}

/* The file of a write that names several: the first of them the kernel
 * offers in DIR, else the last (whose write then says it lacks it), or
 * NULL when the last is null: nothing to write (cgroups/fs.py choose). */
static const char *
choose_file (const char *dir, json_t *names)
{
  size_t n = json_array_size (names);
  for (size_t i = 0; i + 1 < n; i++)
    {
      char path[PATH_MAX + 256];
      const char *name = json_string_value (json_array_get (names, i));
      snprintf (path, sizeof path, "%s/%s", dir, name ?: "");
      if (name && access (path, F_OK) == 0)
        return name;
    }
  return json_string_value (json_array_get (names, n - 1));
}

/* The recipe's [dir, file, value, field, shown] cgroup writes, in order. */
static void
cgroup_writes (json_t *writes)
{
  for (size_t i = 0; i < json_array_size (writes); i++)
    {
      json_t *w = json_array_get (writes, i);
      const char *dir = json_string_value (json_array_get (w, 0));
      json_t *file = json_array_get (w, 1);
      const char *name = json_is_array (file) ? choose_file (dir, file) : json_string_value (file);
      if (name == NULL)
        continue;
      cgroup_write (dir, name, json_string_value (json_array_get (w, 2)), json_string_value (json_array_get (w, 3)),
                    json_string_value (json_array_get (w, 4)));
    }
}

static void
cgroup_create (json_t *cg)
{
  json_t *placements = json_object_get (cg, "placements");
  const char *unified = json_string_value (json_object_get (cg, "unified"));
  for (size_t i = 0; i < json_array_size (placements); i++)
    {
      json_t *p = json_array_get (placements, i);
      make_dirs (json_string_value (json_object_get (p, "dir")));
      if (json_is_true (json_object_get (p, "v2")) && unified)
        enable_v2 (unified, json_string_value (json_object_get (cg, "path")), json_object_get (p, "enable"));
      check_interrupt ();
    }
  if (json_is_string (json_object_get (cg, "cpuset")))
    inherit_cpuset (json_string_value (json_object_get (cg, "cpuset")));
  cgroup_writes (json_object_get (cg, "writes"));
}

static void
cgroup_join (json_t *cg, pid_t pid)
{
  char text[32];
  snprintf (text, sizeof text, "%d", pid);
  json_t *placements = json_object_get (cg, "placements");
  for (size_t i = 0; i < json_array_size (placements); i++)
    cgroup_write (json_string_value (json_object_get (json_array_get (placements, i), "dir")), "cgroup.procs", text,
                  NULL, NULL);
}

/* --systemd-cgroup: the container's cgroup is a transient unit, which
 * systemd makes with husk-init already in it (a scope cannot start
 * empty), with the recipe's properties (runtime/core/cgroups/systemd.py).
 * cgroup_create then makes what systemd does not (v1 hierarchies it does
 * not manage) and writes every limit to cgroupfs as well. */
static void
start_unit (struct ctr *c, json_t *systemd, pid_t helper)
{
  const char *unit = json_string_value (json_object_get (systemd, "unit"));
  snprintf (undo.unit, sizeof undo.unit, "%s", unit); /* a start that timed out may still happen */
  char description[1200];
  snprintf (description, sizeof description, "husk container %s", c->id);
  char *props = json_dumps (json_object_get (systemd, "properties"), JSON_COMPACT);
  struct husk_sd sd;
  int rc = husk_sd_connect (&sd);
  if (rc == 0)
    rc = husk_sd_start_unit (&sd, unit, json_string_value (json_object_get (systemd, "slice")), description, props,
                             helper);
  free (props);
  husk_sd_close (&sd);
  if (rc < 0 && strcmp (sd.error_name, "org.freedesktop.systemd1.UnitExists") == 0)
    undo.unit[0] = '\0'; /* another's: not ours to stop */
  if (rc < 0)
    create_fail ("%s", sd.error);
  TRACE ("cgroups", "systemd_unit",
         "D-Bus StartTransientUnit(\"%s\", Slice=%s, Delegate=yes, PIDs=[%d]) and its job done", unit,
         json_string_value (json_object_get (systemd, "slice")), helper);
  check_interrupt ();
}

/* ---- husk-init ---------------------------------------------------- */

/* A MSG_ERROR record of husk-init (checked) as one line, and the exit
 * code for it: an execve that cannot happen is 126, or 127 for a program
 * that does not exist, as docker and podman give it. */
const char *
helper_error (const char *value, int *code)
{
  static char msg[8192];
  int32_t err;
  memcpy (&err, value, 4);
  const char *step = value + 4;
  const char *detail = step + strlen (step) + 1;
  bool exec = strcmp (step, "exec") == 0;
  snprintf (msg, sizeof msg, "%s%s%s%s%s", step, *detail ? ": " : "", detail, err ? ": " : "",
            !err ? "" : exec ? exec_errno_text (err) : strerror (err));
  *code = exec ? exit_code_of_exec (err) : 1;
  return msg;
}

/* A sealed in-memory copy of husk-init (CVE-2019-5736; launcher.py's
 * sealed_helper has the whole story), or an O_TMPFILE copy on /run where
 * vm.memfd_noexec=2 forbids executable memfds. */
int
sealed_helper (void)
{
  int src = open (HUSK_INIT, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (src < 0 || fstat (src, &st) < 0)
    create_fail ("husk-init: %s: %s", HUSK_INIT, strerror (errno));
  int fd = memfd_create ("husk-init", MFD_CLOEXEC | MFD_ALLOW_SEALING | 0x0010 /* MFD_EXEC */);
  if (fd < 0 && errno == EINVAL)
    fd = memfd_create ("husk-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  bool tmpfile = fd < 0 && errno == EACCES;
  if (tmpfile)
    fd = open ("/run", O_TMPFILE | O_RDWR | O_CLOEXEC, 0500);
  if (fd < 0)
    create_fail ("husk-init: copy %s: %s", HUSK_INIT, strerror (errno));
  for (off_t done = 0; done < st.st_size;)
    {
      ssize_t n = sendfile (fd, src, &done, st.st_size - done);
      if (n <= 0)
        create_fail ("husk-init: copy %s: %s", HUSK_INIT, n == 0 ? "it shrank" : strerror (errno));
    }
  close (src);
  if (tmpfile)
    {
      char path[32];
      snprintf (path, sizeof path, "/proc/self/fd/%d", fd);
      int ro = open (path, O_RDONLY | O_CLOEXEC); /* exec refuses a file open for writing */
      close (fd);
      return ro;
    }
  int seals = F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE;
  if (fchmod (fd, 0500) < 0
      || (fcntl (fd, F_ADD_SEALS, seals | 0x0020 /* F_SEAL_EXEC */) < 0 && fcntl (fd, F_ADD_SEALS, seals) < 0))
    create_fail ("husk-init: seal a copy of %s: %s", HUSK_INIT, strerror (errno));
  TRACE ("process", "sealed_copy", "memfd_create(\"husk-init\", MFD_ALLOW_SEALING) + sendfile(%s) + "
         "F_ADD_SEALS(SEAL|SHRINK|GROW|WRITE|EXEC)", HUSK_INIT);
  return fd;
}

int
connect_console (const char *path)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  int s = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (strlen (path) >= sizeof addr.sun_path)
    create_fail ("console socket: %s: %s", path, strerror (ENAMETOOLONG));
  strcpy (addr.sun_path, path);
  if (s < 0 || connect (s, (struct sockaddr *) &addr, sizeof addr) < 0)
    create_fail ("console socket: %s: %s", path, strerror (errno));
  return s;
}

static json_t *
state_for_hooks (struct ctr *c, pid_t pid)
{
  json_object_set_new (c->data, "pid", json_integer (pid));
  return ctr_oci_state (c, "created");
}

/* HUSK_PLAN_OUT=FILE: the plan husk-init is sent is also written to FILE,
 * a new file, as records (husk_proto.def): for a reader who wants to see
 * what the container is made from, and for the test that holds it to
 * the plan Python makes itself (tests/linux/test_front.py). */
static void
write_plan_out (const char *plan, size_t len)
{
  const char *path = getenv ("HUSK_PLAN_OUT");
  if (path == NULL || path[0] == '\0')
    return;
  int fd = open (path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 || write (fd, plan, len) != (ssize_t) len)
    report_warning_f ("HUSK_PLAN_OUT: %s: %s", path, strerror (errno));
  if (fd >= 0)
    close (fd);
}

/* Spawn husk-init, send the plan, follow it to READY.  fds in husk-init:
 * the caller's 3..floor-1 (--preserve-fds), then the socket at floor,
 * the console at floor+1, the sealed copy of itself at floor+2. */
static pid_t
launch (struct ctr *c, json_t *meta, const char *plan, size_t plan_len, struct create_opts *o)
{
  int floor = 3 + o->preserve_fds;
  int exe = sealed_helper ();
  int pair[2];
  if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
    create_fail ("create %s: socketpair: %s", c->id, strerror (errno));
  int console = o->console_socket                ? connect_console (o->console_socket)
                : o->proxy_remote >= 0 ? fcntl (o->proxy_remote, F_DUPFD_CLOEXEC, 0)
                                       : -1;
  /* Out of the way of the numbers the child lays out. */
  int theirs = fcntl (pair[1], F_DUPFD_CLOEXEC, floor + 3);
  int exe_high = fcntl (exe, F_DUPFD_CLOEXEC, floor + 3);
  int console_high = console >= 0 ? fcntl (console, F_DUPFD_CLOEXEC, floor + 3) : -1;
  pid_t helper = fork ();
  if (helper < 0)
    create_fail ("create %s: fork: %s", c->id, strerror (errno));
  if (helper == 0)
    {
      char sock_arg[16], exe_arg[16], exe_path[32];
      if (dup2 (theirs, floor) < 0 || dup2 (exe_high, floor + 2) < 0
          || (console_high >= 0 && dup2 (console_high, floor + 1) < 0))
        _exit (126);
      if (console_high < 0)
        close (floor + 1); /* an inherited fd there is not the container's */
      close_range (floor + 3, ~0U, 0);
      snprintf (sock_arg, sizeof sock_arg, "%d", floor);
      snprintf (exe_arg, sizeof exe_arg, "%d", floor + 2);
      snprintf (exe_path, sizeof exe_path, "/proc/self/fd/%d", floor + 2);
      char *argv[] = { (char *) "husk-init", sock_arg, exe_arg, NULL };
      extern char **environ;
      execve (exe_path, argv, environ);
      _exit (127);
    }
  undo.helper = helper;
  TRACE ("process", "spawn", "fork + execve(/proc/self/fd/%d = the sealed copy): husk-init, pid %d", floor + 2, helper);
  close (theirs);
  close (pair[1]);
  close (exe);
  close (exe_high);
  if (console >= 0)
    {
      close (console);
      close (console_high);
    }
  int sock = pair[0];
  json_t *cg = json_object_get (meta, "cgroup");
  if (json_is_object (json_object_get (cg, "systemd")))
    {
      start_unit (c, json_object_get (cg, "systemd"), helper);
      cgroup_create (cg);
      json_object_set (json_object_get (c->data, "husk"), "cgroup_created", undo.created);
      ctr_save (c);
    }
  cgroup_join (cg, helper); /* children inherit it */
  char *traced = NULL;
  if (husk_trace)
    {
      trace_plan (plan, plan_len, &traced, &plan_len, o->run ? HUSK_TRACE_TO_EXEC : HUSK_TRACE_TO_READY);
      plan = traced;
    }
  TRACE ("process", "plan_sent", "write(socket, %zu bytes): the plan, as records (native/include/husk_proto.def)",
         plan_len);
  /* The plan is one stream of records: write it whole. */
  for (size_t done = 0; done < plan_len;)
    {
      ssize_t n = write (sock, plan + done, plan_len - done);
      if (n < 0 && errno == EINTR)
        {
          check_interrupt ();
          continue;
        }
      if (n < 0)
        break; /* husk-init died: its record or its status says why */
      done += n;
    }
  pid_t pid = 0;
  for (;;)
    {
      uint32_t tag, len;
      char *value;
      if (recv_record (sock, &tag, &value, &len) < 0)
        {
          check_interrupt ();
          int status = 0;
          waitpid (helper, &status, 0);
          undo.helper = 0;
          create_fail ("create %s: husk-init ended before the process was ready (status %d): %s", c->id,
                       WIFEXITED (status) ? WEXITSTATUS (status) : -WTERMSIG (status), strerror (EPIPE));
        }
      if (tag == MSG_PID && len == 8)
        {
          int64_t v;
          memcpy (&v, value, 8);
          pid = undo.pid = v;
          /* Recorded before anything else can go wrong. */
          json_object_set_new (c->data, "pid", json_integer (pid));
          json_object_set_new (json_object_get (c->data, "husk"), "start_time",
                               json_integer (process_start_time (pid)));
          ctr_save (c);
        }
      else if (tag == MSG_HOOKS)
        {
          /* The rootfs's device nodes are made: the v1 device rules,
           * which also rule mknod, go on now (container.create's on_hooks). */
          cgroup_writes (json_object_get (json_object_get (meta, "cgroup"), "device_writes"));
          json_t *state = state_for_hooks (c, pid);
          json_t *hooks = json_object_get (c->config, "hooks"); /* the config's own (instance.c) */
          const char *failed = run_hooks ("prestart", json_object_get (hooks, "prestart"), state, true);
          if (failed == NULL)
            failed = run_hooks ("createRuntime", json_object_get (hooks, "createRuntime"), state, true);
          if (failed)
            create_fail ("%s", failed);
          char *text = json_dumps (state, JSON_COMPACT);
          json_decref (state);
          if (text == NULL || send_record (sock, MSG_STATE, text, strlen (text)) < 0)
            create_fail ("create %s: send the state to husk-init: %s", c->id, strerror (errno));
          free (text);
        }
      else if (tag == MSG_READY)
        {
          free (value);
          break;
        }
      else if (tag == MSG_TRACE)
        trace_forward (value, len);
      else if (tag == MSG_ERROR && !husk_record_problem (husk_record_info (MSG_ERROR), value, len))
        {
          int code;
          const char *msg = helper_error (value, &code);
          create_fail_with (code, "%s", msg);
        }
      else
        create_fail ("create %s: unexpected record %u from husk-init: %s", c->id, tag, strerror (EPROTO));
      free (value);
      check_interrupt ();
    }
  free (traced);
  if (husk_trace && o->run)
    o->trace_sock = sock; /* the steps after start come on it (drain_trace) */
  else
    close (sock);
  waitpid (helper, NULL, 0);
  undo.helper = 0;
  return pid;
}

/* ---- create and run ------------------------------------------------ */

static void
parse_create (int argc, char **argv, struct create_opts *o, bool run)
{
  memset (o, 0, sizeof *o);
  o->proxy_local = o->proxy_remote = o->master = o->trace_sock = -1;
  o->run = run;
  const char *bundle = NULL;
  struct opt opts[] = {
    { "--bundle", 'b', &bundle, NULL },
    { "--pid-file", 0, &o->pid_file, NULL },
    { "--console-socket", 0, &o->console_socket, NULL },
    { "--no-pivot", 0, NULL, &o->no_pivot },
    { "--no-new-keyring", 0, NULL, &o->no_new_keyring },
    { "--preserve-fds", 0, &o->preserve_flag, NULL },
    { run ? "--detach" : NULL, 'd', NULL, &o->detach },
    { "--keep", 0, NULL, &o->keep },
    { NULL, 0, NULL, NULL },
  };
  if (!run)
    opts[6].name = NULL; /* create knows neither --detach nor --keep */
  if (parse_args (argc, argv, &o->id, 1, opts, run) != 1 || !valid_id (o->id) || (o->keep && !run))
    python ();
  /* run is runc's only with one of runc's own flags (runtime/cli/run.py's
   * rule); `husk run IMAGE` is docker's, wherever it is typed. */
  if (run && !(bundle || o->pid_file || o->console_socket || o->no_pivot || o->no_new_keyring || o->preserve_flag
               || o->keep))
    python ();
  absolute_path (bundle ? bundle : ".", o->bundle);
  if (o->preserve_flag)
    {
      char *end;
      long n = strtol (o->preserve_flag, &end, 10);
      if (*end || end == o->preserve_flag || n < 0 || n > 4096)
        python ();
      o->preserve_fds = n;
    }
  if (o->pid_file && o->pid_file[0] != '/')
    {
      static char pid_file[PATH_MAX];
      absolute_path (o->pid_file, pid_file);
      o->pid_file = pid_file;
    }
  /* Socket activation (sd_listen_fds(3)): the fds systemd passed us go
   * on to the process as 3..3+N-1, the --preserve-fds ones after them,
   * as runc does. */
  const char *listen_pid = getenv ("LISTEN_PID"), *listen_fds = getenv ("LISTEN_FDS");
  if (listen_pid && listen_fds && atol (listen_pid) == getpid ())
    {
      char *end;
      long n = strtol (listen_fds, &end, 10);
      if (*end == '\0' && end != listen_fds && n > 0 && n <= 4096)
        o->preserve_fds += n;
    }
}

void
write_pid_file (const char *path, pid_t pid)
{
  char tmp[PATH_MAX + 16], text[32];
  snprintf (tmp, sizeof tmp, "%s.husk-tmp", path);
  snprintf (text, sizeof text, "%d", pid);
  if (write_text (tmp, text) < 0 || rename (tmp, path) < 0)
    create_fail ("pid file %s: %s", path, strerror (errno));
}

/* The state root and any missing parents (os.makedirs, as state.py
 * makes it): the shim's --root is <its root>/<namespace>. */
static bool
make_root (const char *root)
{
  char d[PATH_MAX];
  snprintf (d, sizeof d, "%s", root);
  for (char *p = d + 1; *p; p++)
    if (*p == '/')
      {
        *p = '\0';
        if (mkdir (d, 0700) < 0 && errno != EEXIST)
          return false;
        *p = '/';
      }
  return mkdir (d, 0700) == 0 || errno == EEXIST;
}

static pid_t
create (struct create_opts *o, bool run)
{
  struct sigaction sa = { .sa_handler = on_signal };
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGHUP, &sa, NULL);

  struct ctr *c = &undo.c;
  c->id = o->id;
  snprintf (c->dir, sizeof c->dir, "%s/%s", g.root, o->id);
  snprintf (c->fifo, sizeof c->fifo, "%s/exec.fifo", c->dir);
  if (!make_root (g.root) || (g.systemd_cgroup && !husk_sd_booted ()))
    python ();
  if (mkdir (c->dir, 0700) < 0)
    python (); /* taken, or not ours to make: Python says which */
  undo.have_dir = true;
  c->lock = open (c->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (c->lock < 0 || flock (c->lock, LOCK_EX) < 0)
    to_python ();

  struct instance in;
  if (!instance_load (&in, o->bundle))
    to_python (); /* a value planning would refuse: Python names it */
  struct buf key = { 0 };
  recipe_key (o, &in, &key);
  char cache[PATH_MAX];
  snprintf (cache, sizeof cache, "%s/%016llx", PLAN_CACHE, (unsigned long long) fnv1a (key.data, key.len));
  bool cacheable = !in.lossy && cache_dir_ok ();
  size_t len = 0;
  json_t *meta = NULL;
  /* --explain plans afresh, so a reader sees the planning too. */
  char *recipe = cacheable && !husk_trace ? cache_load (cache, &key, &len, &meta) : NULL;
  bool fresh = recipe == NULL;
  int planner = -1;
  if (fresh && cacheable && !husk_trace)
    {
      /* Many containers of one new shape at once (a pod, a compose file,
       * a scale-up): one plans, the others wait for its recipe instead of
       * each starting Python.  The lock goes with this process. */
      char lock[PATH_MAX + 8];
      snprintf (lock, sizeof lock, "%s/.lock.%s", PLAN_CACHE, strrchr (cache, '/') + 1);
      planner = open (lock, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
      while (planner >= 0 && flock (planner, LOCK_EX) < 0 && errno == EINTR)
        check_interrupt ();
      recipe = cache_load (cache, &key, &len, &meta);
      fresh = recipe == NULL;
    }
  if (fresh)
    {
      TRACE ("planning", "compile", "fork + execve(%s husk create, HUSK_RECIPE_FD): Python plans this config's shape",
             HUSK_PYTHON);
      recipe = compile (o, &in, &len);
      meta = recipe_meta (recipe, len);
    }
  else
    TRACE ("planning", "recipe_hit", "read %s: the recipe Python planned for this config's shape", cache);
  if (meta == NULL || json_integer_value (json_object_get (meta, "version")) != HUSK_RECIPE_VERSION
      || json_integer_value (json_object_get (meta, "floor")) != 3 + o->preserve_fds)
    to_python ();
  if (!instance_check (&in, meta) || !place_cgroup (json_object_get (meta, "cgroup"), &in, o->id))
    to_python (); /* a value planning would refuse: Python names it */
  uint32_t head_len; /* recipe_meta found it in bounds */
  memcpy (&head_len, recipe, 4);
  size_t plan_len;
  if (json_is_true (json_object_get (meta, "terminal")) && !o->console_socket)
    {
      if (!run || o->detach)
        to_python (); /* no one to hand the pty to: Python says what is missing */
      int pair[2];
      if (socketpair (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0)
        create_fail ("create %s: socketpair: %s", c->id, strerror (errno));
      o->proxy_local = pair[0];
      o->proxy_remote = pair[1];
    }
  json_t *warnings = json_object_get (meta, "warnings");
  for (size_t i = 0; i < json_array_size (warnings); i++)
    report_warning_f ("%s", json_string_value (json_array_get (warnings, i)));
  if (fresh && cacheable)
    cache_store (cache, &key, recipe, len);
  if (planner >= 0)
    close (planner);
  char *plan = fill_plan (recipe + 4 + head_len, len - 4 - head_len, meta, &in, c, &plan_len);
  free (recipe);
  free (key.data);

  /* Write-ahead: what is about to be made is on disk before it is made,
   * so a husk killed at any point leaves nothing `delete -f` can't find. */
  json_t *cg = json_object_get (meta, "cgroup");
  c->data = json_deep_copy (json_object_get (meta, "state"));
  json_t *husk = json_object_get (c->data, "husk");
  json_t *annotations = json_object_get (in.config, "annotations");
  json_object_set_new (c->data, "id", json_string (c->id));
  json_object_set_new (c->data, "bundle", json_string (o->bundle));
  json_object_set_new (c->data, "annotations", json_is_object (annotations) ? json_deep_copy (annotations)
                                                                             : json_object ());
  json_object_set_new (husk, "rootfs", json_string (in.rootfs));
  json_t *hooks = json_object_get (in.config, "hooks");
  json_object_set_new (husk, "hooks", json_pack ("{s:O?, s:O?}", "poststart", json_object_get (hooks, "poststart"),
                                                 "poststop", json_object_get (hooks, "poststop")));
  c->config = json_incref (in.config);
  json_object_set (husk, "cgroup", json_object_get (cg, "path"));
  if (in.lossy) /* its numbers are not exact here: exec reads it from the bundle (container.py process_of) */
    json_object_set_new (husk, "process_in_bundle", json_true ());
  else
    json_object_set_new (husk, "process", json_deep_copy (json_object_get (in.config, "process")));
  instance_free (&in);
  json_t *dirs = json_array ();
  json_t *placements = json_object_get (cg, "placements");
  for (size_t i = 0; i < json_array_size (placements); i++)
    json_array_append (dirs, json_object_get (json_array_get (placements, i), "dir"));
  json_object_set_new (husk, "cgroup_dirs", dirs);
  json_object_set_new (husk, "cgroup_created", planned (placements));
  json_t *systemd = json_object_get (cg, "systemd");
  if (json_is_object (systemd))
    json_object_set (husk, "systemd_unit", json_object_get (systemd, "unit"));
  ctr_save (c);
  TRACE ("state", "state", "mkdir %s + write state.json: what is about to be made, before it is made", c->dir);
  undo.own = dirs;
  undo.created = json_array ();
  if (!json_is_object (systemd)) /* else once husk-init is in the unit (launch) */
    {
      cgroup_create (cg);
      json_object_set (husk, "cgroup_created", undo.created);
    }

  if (mkfifo (c->fifo, 0622) < 0 || chmod (c->fifo, 0622) < 0)
    create_fail ("create %s: exec fifo %s: %s", c->id, c->fifo, strerror (errno));
  TRACE ("process", "exec_fifo", "mkfifo(\"%s\", 0622): `husk start` opens it to let the process go on", c->fifo);
  char now[64];
  now_iso (now);
  json_object_set_new (husk, "created", json_string (now));
  ctr_save (c);
  check_interrupt ();

  write_plan_out (plan, plan_len);
  pid_t pid = launch (c, meta, plan, plan_len, o);
  free (plan);
  if (o->proxy_local >= 0)
    {
      close (o->proxy_remote);
      o->master = console_receive_master (o->proxy_local);
      close (o->proxy_local);
      if (o->master < 0)
        create_fail ("console: no pty master received on the console socket: %s", strerror (EPROTO));
    }
  json_object_set_new (c->data, "pid", json_integer (pid));
  json_object_set_new (c->data, "status", json_string ("created"));
  json_object_set_new (husk, "start_time", json_integer (process_start_time (pid)));
  ctr_save (c);
  if (o->pid_file)
    write_pid_file (o->pid_file, pid);
  json_decref (meta);
  sa.sa_handler = SIG_DFL;
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGHUP, &sa, NULL);
  return pid;
}

void
verb_create (int argc, char **argv)
{
  struct create_opts o;
  parse_create (argc, argv, &o, false);
  create (&o, false);
  exit (0);
}

static pid_t forward_to;
static int forward_master = -1;

static void
forward (int sig)
{
  if (sig == SIGWINCH)
    console_resize (forward_master); /* the pty's size follows our terminal's */
  kill (forward_to, sig);
}

int
wait_in_foreground (pid_t pid, int master)
{
  forward_to = pid;
  forward_master = master;
  struct sigaction sa = { .sa_handler = forward, .sa_flags = SA_RESTART };
  int forwarded[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH };
  for (size_t i = 0; i < sizeof forwarded / sizeof forwarded[0]; i++)
    sigaction (forwarded[i], &sa, NULL);
  if (master >= 0)
    console_pump (master);
  int status = 0;
  while (waitpid (pid, &status, 0) < 0)
    if (errno != EINTR)
      break;
  return WIFSIGNALED (status) ? 128 + WTERMSIG (status) : WEXITSTATUS (status);
}

/* --explain: the container init's steps from start to execve, until
 * the socket closes there (CLOEXEC) or with the process. */
static void
drain_trace (int sock)
{
  uint32_t tag, len;
  char *value;
  while (recv_record (sock, &tag, &value, &len) == 0)
    {
      if (tag == MSG_TRACE)
        trace_forward (value, len);
      free (value);
    }
  close (sock);
}

/* run: create, start, and unless detached wait and delete - in one
 * process, which is the container's parent (CLONE_PARENT), as runc. */
void
verb_run (int argc, char **argv)
{
  struct create_opts o;
  parse_create (argc, argv, &o, true);
  pid_t pid = create (&o, true);
  struct ctr *c = &undo.c;
  int failed_code;
  const char *err = release (c, &failed_code);
  if (err)
    create_fail_with (failed_code, "%s", err); /* and the container goes, as Python's run deletes it */
  started (c);
  if (o.trace_sock >= 0)
    drain_trace (o.trace_sock);
  if (o.detach)
    exit (0);
  int lock = c->lock; /* not held while the container runs: state and kill must work */
  c->lock = -1;
  close (lock);
  undo.have_dir = false;
  undo.pid = 0;
  json_decref (undo.created);
  undo.created = NULL;

  int code = wait_in_foreground (pid, o.master);
  if (o.keep)
    exit (code);
  struct ctr again;
  if (ctr_open (&again, o.id))
    ctr_delete (&again); /* what is left of it goes: processes, cgroups, state */
  exit (code);
}

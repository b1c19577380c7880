/* front.h - the `husk` command's C front end.
 *
 * `husk` is this small static program.  It carries out the OCI verbs
 * that podman's conmon and containerd's shim call for every container
 * (create, start, state, kill, delete, and run) without starting Python:
 * create runs a recipe that Python compiled once for the same config
 * shape and host (runtime/core/recipe.py), cached under /run/husk-plans,
 * with the container's own values filled in (instance.c).  The engine's
 * containers come here too (runtime/core/executor.py).
 *
 * Whatever the front end does not carry out itself - another verb, a
 * flag it does not know, an error to report, a config the recipe cannot
 * express - it hands to the Python CLI by exec'ing it with the same argv,
 * before it has changed anything.  So every message has one
 * implementation, in Python.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef HUSK_FRONT_H
#define HUSK_FRONT_H

#include <jansson.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "husk_recipe.h" /* HUSK_RECIPE_VERSION, _EXIT_UNFIT, the tables */

#define PLAN_CACHE "/run/husk-plans"

struct globals
{
  int argc;
  char **argv;          /* as given: handed unchanged to Python */
  char root[PATH_MAX];  /* --root, made absolute as os.path.abspath does */
  const char *log;      /* --log FILE, or NULL */
  const char *log_format;
  bool debug;           /* --debug: planning says why a config is not a recipe */
  bool systemd_cgroup;  /* --systemd-cgroup: create's cgroup is a systemd unit (native/src/sdbus.h) */
};
extern struct globals g;
/* The Python program `python -I -S -c` runs: the CLI. */
extern const char husk_entry[];

/* Exec the Python CLI with the original argv (see above).  Every fd the
 * front end opened is O_CLOEXEC, so Python starts with what husk got. */
__attribute__ ((noreturn)) void python (void);
/* Report one error line (stderr and --log) and exit 1. */
__attribute__ ((noreturn, format (printf, 1, 2))) void fail (const char *fmt, ...);
__attribute__ ((noreturn, format (printf, 2, 3))) void fail_with (int code, const char *fmt, ...);
/* The exit code of a process whose execve failed with ERR, as docker and
 * podman give it (runtime/core/errors.py ExecError is the same). */
int exit_code_of_exec (int err);
void report (const char *msg);
/* A warning: to --log when there is one, else to stderr. */
__attribute__ ((format (printf, 1, 2))) void report_warning_f (const char *fmt, ...);
/* Run the host-side hooks of KIND ([{path, args, env, timeout}]) with
 * STATE on stdin (hooks.c).  fatal: the first failure's line, or NULL;
 * else each failure is a warning and the rest run. */
const char *run_hooks (const char *kind, json_t *hooks, json_t *state, bool fatal);
/* report() of a formatted line. */
void report_v (const char *fmt, va_list ap);

/* Paths. */
void absolute_path (const char *path, char out[PATH_MAX]);
bool valid_id (const char *id);

/* A container's state directory, locked (state.c). */
struct ctr
{
  const char *id;
  char dir[PATH_MAX];
  char fifo[PATH_MAX];
  int lock;
  json_t *data;
  json_t *config; /* create: the config.json it is made from */
};
/* Lock and load an existing container.  Returns false (holding nothing)
 * if it does not exist; anything stranger hands over to Python. */
bool ctr_open (struct ctr *c, const char *id);
void ctr_close (struct ctr *c);
void ctr_save (struct ctr *c);
void ctr_remove (struct ctr *c);
long long ctr_pid (struct ctr *c);
const char *ctr_status (struct ctr *c);
json_t *ctr_oci_state (struct ctr *c, const char *status);
long long process_start_time (pid_t pid);
json_t *husk_field (struct ctr *c, const char *name);

/* The verbs. */
__attribute__ ((noreturn)) void verb_state (int argc, char **argv);
__attribute__ ((noreturn)) void verb_start (int argc, char **argv);
__attribute__ ((noreturn)) void verb_kill (int argc, char **argv);
__attribute__ ((noreturn)) void verb_delete (int argc, char **argv);
__attribute__ ((noreturn)) void verb_create (int argc, char **argv);
__attribute__ ((noreturn)) void verb_run (int argc, char **argv);

/* start's release of the exec fifo (state.c), shared with run. */
const char *release (struct ctr *c, int *code);
/* After release: status running, and the poststart hooks. */
void started (struct ctr *c);
/* delete of a stopped container: leftovers killed, cgroups removed,
 * poststop hooks, state removed (state.c). */
void ctr_delete (struct ctr *c);
void remove_cgroups (json_t *created, json_t *own);
const char *exec_errno_text (int err);

/* A config.json's per-container values, apart from its shape (instance.c). */
struct instance
{
  const char *bundle;
  json_t *config;            /* as read */
  json_t *shape;             /* without the per-container values: the cache key */
  char rootfs[PATH_MAX];     /* root.path resolved (instance_check) */
  char cgroup_path[PATH_MAX / 2]; /* linux.cgroupsPath, or "" */
  size_t *order;             /* the mounts' config indexes in canonical order */
  size_t nmounts;
  bool lossy;                /* numbers past int64 read as reals (instance_load) */
};
/* Load config.json; false if planning would refuse a value (Python's).
 * The shape is the config with every field husk_recipe.def names as a
 * per-container value replaced by a marker. */
bool instance_load (struct instance *in, const char *bundle);
void instance_free (struct instance *in);
char *instance_shape (struct instance *in);
/* The checks planning made of the values (rootfs, bind sources, joined
 * namespaces), made again for these; false: plan in Python. */
bool instance_check (struct instance *in, json_t *meta);
/* A mount's source for the recipe's slot ["config", j, bind] or ["cgroup", base]. */
const char *instance_mount_source (struct instance *in, json_t *slot, const char *cgroup_path, char out[PATH_MAX]);
const char *instance_join_path (struct instance *in, size_t index);
/* The config index of the mount of canonical rank RANK (-1: none). */
size_t mount_index (struct instance *in, json_t *rank);

/* run -t's pty (console.c): the master husk-init sends on the console
 * socket (-1 if none came), its size kept as our terminal's, and the
 * copying between our stdio and it until the container's side closes. */
int console_receive_master (int local);
void console_resize (int master);
void console_pump (int master);

/* Shared by create and exec (create.c): husk-init's sealed copy, a
 * console socket connected, a pid file written, husk-init's MSG_ERROR as
 * one line with its exit code, and the wait of run and exec in the
 * foreground (signals forwarded, the pty proxied) for the exit code. */
int sealed_helper (void);
int connect_console (const char *path);
void write_pid_file (const char *path, pid_t pid);
const char *helper_error (const char *value, int *code);
int wait_in_foreground (pid_t pid, int master);
/* exec of a plan Python made (exec.c). */
__attribute__ ((noreturn)) void verb_exec_plan (const char *fd_text);

/* --explain (trace.c, native/src/trace.h): HUSK_TRACE_FD's file, the
 * steps husk-init sends, and the plan that asks it for them. */
extern int trace_fd;
void trace_open (void);
void trace_forward (const char *value, uint32_t len);
void trace_plan (const char *plan, size_t len, char **out, size_t *out_len, int until);

/* Small files. */
char *read_small (const char *path, size_t *len, size_t limit);
int write_text (const char *path, const char *text);
void now_iso (char out[64]);

#endif

/* instance.c - a config.json's per-container values, apart from its shape.
 *
 * Every container podman, containerd or Docker makes has a config of
 * its own: a new rootfs, hostname, cgroupsPath, bind sources under the
 * container's own directories, a HOSTNAME= in its environment.  What is
 * left when those are taken out - the shape - is the same for every
 * container made from one image with one set of options, and it is all
 * that planning turns into a plan.  So the recipe cache is keyed on the
 * shape (create.c), and the values are filled into the plan as typed
 * fields.  native/include/husk_recipe.def names the values, the record
 * that takes each and how it is filled in; this file takes them out by
 * that table.
 *
 * A value of a type planning would refuse is not checked here: the
 * whole create goes to Python, which names the field.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#define _GNU_SOURCE
#include "front.h"
#include "sdbus.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* Stands where a per-container value was, so a shape tells "given"
 * from "absent" and nothing else. */
#define PER_CONTAINER "<per-container>"

static bool
is_string_list (json_t *v, bool need_equals)
{
  if (!json_is_array (v))
    return false;
  for (size_t i = 0; i < json_array_size (v); i++)
    {
      const char *s = json_string_value (json_array_get (v, i));
      if (s == NULL || (need_equals && strchr (s, '=') == NULL))
        return false;
    }
  return true;
}

/* linux.cgroupsPath made clean as clean_cgroups_path
 * (runtime/core/cgroups/manager.py) makes it: no empty or "." parts,
 * absolute or (under husk's own parent) relative.  False for what it
 * refuses - '..', the root cgroup, a systemd slice:prefix:name - which
 * Python then names. */
static bool
clean_cgroups_path (const char *path, char *out, size_t size)
{
  char copy[PATH_MAX];
  if (strlen (path) >= sizeof copy / 2 || (path[0] != '/' && strchr (path, ':')))
    return false;
  snprintf (copy, sizeof copy, "%s", path);
  size_t n = 0;
  out[0] = '\0';
  for (char *save, *part = strtok_r (copy, "/", &save); part; part = strtok_r (NULL, "/", &save))
    {
      if (strcmp (part, ".") == 0)
        continue;
      if (strcmp (part, "..") == 0)
        return false;
      n += snprintf (out + n, size - n, "%s%s", n || path[0] == '/' ? "/" : "", part);
      if (n >= size)
        return false;
    }
  return n > 0;
}

/* A list of hooks as planning takes it: each an object with an absolute
 * path, args and env lists of strings, a timeout of at least 1 s. */
static bool
host_hooks_ok (json_t *list)
{
  if (!json_is_array (list))
    return false;
  for (size_t i = 0; i < json_array_size (list); i++)
    {
      json_t *h = json_array_get (list, i);
      const char *path = json_string_value (json_object_get (h, "path"));
      json_t *args = json_object_get (h, "args"), *env = json_object_get (h, "env");
      json_t *timeout = json_object_get (h, "timeout");
      if (!json_is_object (h) || path == NULL || path[0] != '/' || (args && !json_is_null (args) && !is_string_list (args, false))
          || (env && !json_is_null (env) && !is_string_list (env, false))
          || (timeout && !json_is_null (timeout) && !(json_is_number (timeout) && json_number_value (timeout) >= 1)))
        return false;
    }
  return true;
}

/* parent[key] is absent, null or a string. */
static bool
string_or_none (json_t *parent, const char *key)
{
  json_t *v = json_object_get (parent, key);
  return v == NULL || json_is_null (v) || json_is_string (v);
}

/* Each item of LIST, if it is an object, has a string or no KEY. */
static bool
items_string_or_none (json_t *list, const char *key)
{
  for (size_t i = 0; i < json_array_size (list); i++)
    if (json_is_object (json_array_get (list, i)) && !string_or_none (json_array_get (list, i), key))
      return false;
  return true;
}

/* Replace the value at FIELD of V (husk_recipe.def's "a.b", "a[].b") with
 * the marker: any value but null and the empty string, which planning
 * takes as "not given" and so are part of the shape. */
static void
take_field (json_t *v, const char *field)
{
  const char *dot = strchr (field, '.');
  size_t n = dot ? (size_t) (dot - field) : strlen (field);
  bool each = n > 2 && strncmp (field + n - 2, "[]", 2) == 0;
  char name[64];
  snprintf (name, sizeof name, "%.*s", (int) (each ? n - 2 : n), field);
  json_t *child = json_object_get (v, name);
  if (child == NULL || json_is_null (child))
    return;
  if (dot == NULL)
    {
      if (!json_is_string (child) || json_string_length (child) > 0)
        json_object_set_new (v, name, json_string (PER_CONTAINER));
    }
  else if (each)
    for (size_t i = 0; i < json_array_size (child); i++)
      take_field (json_array_get (child, i), dot + 1);
  else
    take_field (child, dot + 1);
}

/* The mounts in a canonical order, for the key only: by their text
 * (without the source), ties in the config's order.  podman lists
 * /etc/hosts, /etc/hostname, /dev/shm ... in a new order each time; the
 * plan gives each mount its own records, whatever the others are, so one
 * recipe serves every order and the front end lays its mounts out in the
 * config's own (create.c fill_plan).  in->order[rank] is the config
 * index of the mount of that rank; the shape holds them in rank order. */
struct ranked
{
  char *text;
  size_t index;
};

static int
by_text (const void *a, const void *b)
{
  const struct ranked *x = a, *y = b;
  int c = strcmp (x->text, y->text);
  return c ? c : x->index < y->index ? -1 : x->index > y->index;
}

static bool
canonical_mount_order (struct instance *in, json_t *mounts)
{
  size_t n = json_array_size (mounts);
  in->nmounts = n;
  in->order = calloc (n + 1, sizeof *in->order);
  if (mounts == NULL || json_is_null (mounts))
    return in->order != NULL; /* none: the shape says so as it is */
  if (!json_is_array (mounts))
    return false;
  struct ranked *r = calloc (n + 1, sizeof *r);
  if (in->order == NULL || r == NULL)
    return false;
  bool ok = true;
  for (size_t i = 0; i < n; i++)
    {
      r[i].index = i;
      r[i].text = json_dumps (json_array_get (mounts, i), JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
      ok &= r[i].text != NULL;
    }
  if (ok)
    qsort (r, n, sizeof *r, by_text);
  json_t *sorted = json_array ();
  for (size_t i = 0; i < n; i++)
    {
      in->order[i] = r[i].index;
      json_array_append (sorted, json_array_get (mounts, r[i].index));
      free (r[i].text);
    }
  free (r);
  json_object_set_new (in->shape, "mounts", sorted);
  return ok;
}

bool
instance_load (struct instance *in, const char *bundle)
{
  memset (in, 0, sizeof *in);
  in->bundle = bundle;
  char path[PATH_MAX + 16];
  snprintf (path, sizeof path, "%s/config.json", bundle);
  size_t len;
  char *text = read_small (path, &len, 64 << 20);
  if (text == NULL)
    return false; /* Python names the missing or unreadable config */
  json_error_t error;
  in->config = json_loadb (text, len, 0, &error);
  /* jansson's integers are int64: an unlimited rlimit written as 2^64-1
   * (docker's and podman's --ulimit ...=-1) does not fit.  Read as reals,
   * such numbers are not exact: the config is planned afresh each time
   * (no recipe is kept for it) and its process is read from the bundle,
   * not copied into the state (create.c). */
  if (in->config == NULL && json_error_code (&error) == json_error_numeric_overflow)
    {
      in->lossy = true;
      in->config = json_loadb (text, len, JSON_DECODE_INT_AS_REAL, &error);
    }
  free (text);
  if (!json_is_object (in->config))
    return false;
  json_t *config = in->config;

  /* Each per-container value, checked as planning checks it. */
  if (!json_is_string (json_object_get (json_object_get (config, "root"), "path"))
      || !string_or_none (config, "hostname"))
    return false;
  json_t *process = json_object_get (config, "process");
  json_t *args = json_object_get (process, "args"), *env = json_object_get (process, "env");
  if (!is_string_list (args, false) || json_array_size (args) == 0
      || json_string_length (json_array_get (args, 0)) == 0
      || (env && !json_is_null (env) && !is_string_list (env, true)))
    return false;
  json_t *linux_ = json_object_get (config, "linux");
  if (!items_string_or_none (json_object_get (config, "mounts"), "source")
      || !items_string_or_none (json_object_get (linux_, "namespaces"), "path")
      || !string_or_none (linux_, "cgroupsPath"))
    return false;
  json_t *cgroups_path = json_object_get (linux_, "cgroupsPath");
  bool relative = false;
  if (g.systemd_cgroup)
    {
      /* "slice:prefix:name", read as it will be (create.c place_cgroup). */
      struct husk_sd_unit unit;
      char why[512];
      const char *path = json_string_value (cgroups_path) ?: "";
      if (strlen (path) >= sizeof in->cgroup_path || husk_sd_unit_of (path, "id", &unit, why, sizeof why) < 0)
        return false;
      snprintf (in->cgroup_path, sizeof in->cgroup_path, "%s", path);
    }
  else if (json_is_string (cgroups_path) && json_string_length (cgroups_path) > 0)
    {
      const char *path = json_string_value (cgroups_path);
      if (!clean_cgroups_path (path, in->cgroup_path, sizeof in->cgroup_path))
        return false;
      relative = path[0] != '/';
    }
  /* The hooks that run on the host are run by the front end as the config
   * gives them (docker's prestart hook names the container), checked as
   * specconv.hooks_of checks them. */
  json_t *hooks = json_object_get (config, "hooks");
  if (hooks && !json_is_null (hooks) && !json_is_object (hooks))
    return false;
  static const char *host_kinds[] = { "prestart", "createRuntime", "poststart", "poststop" };
  for (int k = 0; k < 4; k++)
    {
      json_t *list = json_object_get (hooks, host_kinds[k]);
      if (list && !json_is_null (list) && !host_hooks_ok (list))
        return false;
    }
  json_t *annotations = json_object_get (config, "annotations"), *value;
  const char *name;
  if (annotations && !json_is_null (annotations) && !json_is_object (annotations))
    return false;
  json_object_foreach (annotations, name, value)
    if (!json_is_string (value))
      return false;

  /* The shape: the config without them. */
  json_t *shape = in->shape = json_deep_copy (config);
  for (size_t i = 0; i < husk_nper_container; i++)
    if (husk_per_container[i].field[0])
      take_field (shape, husk_per_container[i].field);
  if (relative) /* under the recipe's default parent: a shape of its own */
    json_object_set_new (json_object_get (shape, "linux"), "cgroupsPath", json_string (PER_CONTAINER " relative"));
  /* Annotations are the container's own, but org.systemd.property.*
   * ones become properties of its unit: those are part of the shape. */
  json_t *unit_properties = json_object ();
  json_object_foreach (annotations, name, value)
    if (strncmp (name, "org.systemd.property.", 21) == 0)
      json_object_set (unit_properties, name, value);
  json_object_set_new (shape, " systemd unit properties", unit_properties);
  return canonical_mount_order (in, json_object_get (shape, "mounts"));
}

void
instance_free (struct instance *in)
{
  json_decref (in->config);
  json_decref (in->shape);
  free (in->order);
}

char *
instance_shape (struct instance *in)
{
  return json_dumps (in->shape, JSON_COMPACT | JSON_SORT_KEYS);
}

/* config.json's value at section[index].key, or NULL. */
static const char *
item (struct instance *in, const char *section, size_t index, const char *key)
{
  json_t *list = strcmp (section, "mounts") == 0
                     ? json_object_get (in->config, "mounts")
                     : json_object_get (json_object_get (in->config, "linux"), section);
  return json_string_value (json_object_get (json_array_get (list, index), key));
}

/* The config index of the mount of canonical rank RANK (or past the end). */
size_t
mount_index (struct instance *in, json_t *rank)
{
  json_int_t r = json_integer_value (rank);
  return json_is_integer (rank) && r >= 0 && (size_t) r < in->nmounts ? in->order[r] : (size_t) -1;
}

/* A path in the config, relative to the bundle as planning takes it. */
static void
in_bundle (struct instance *in, const char *path, char out[PATH_MAX])
{
  if (path[0] == '/')
    snprintf (out, PATH_MAX, "%s", path);
  else
    snprintf (out, PATH_MAX, "%s/%s", in->bundle, path);
}

bool
instance_check (struct instance *in, json_t *meta)
{
  /* root.path: resolve_rootfs's rules. */
  char given[PATH_MAX];
  struct stat st, host;
  in_bundle (in, json_string_value (json_object_get (json_object_get (in->config, "root"), "path")), given);
  if (realpath (given, in->rootfs) == NULL || stat (in->rootfs, &st) < 0 || !S_ISDIR (st.st_mode)
      || stat ("/", &host) < 0 || (st.st_dev == host.st_dev && st.st_ino == host.st_ino))
    return false;
  /* Each bind source and joined namespace must exist, as planning found. */
  json_t *sources = json_object_get (meta, "mount_sources");
  for (size_t m = 0; m < json_array_size (sources); m++)
    {
      json_t *slot = json_array_get (sources, m);
      if (!json_is_array (slot) || strcmp (json_string_value (json_array_get (slot, 0)) ?: "", "config") != 0)
        continue;
      const char *source = item (in, "mounts", mount_index (in, json_array_get (slot, 1)), "source");
      char path[PATH_MAX];
      if (source == NULL)
        return false;
      in_bundle (in, source, path);
      if (json_is_true (json_array_get (slot, 2)) && stat (path, &st) < 0)
        return false;
    }
  json_t *joins = json_object_get (meta, "join_paths");
  for (size_t n = 0; n < json_array_size (joins); n++)
    {
      const char *path = item (in, "namespaces", json_integer_value (json_array_get (joins, n)), "path");
      if (path == NULL || stat (path, &st) < 0)
        return false;
    }
  return true;
}

const char *
instance_mount_source (struct instance *in, json_t *slot, const char *cgroup_path, char out[PATH_MAX])
{
  const char *kind = json_string_value (json_array_get (slot, 0));
  if (kind && strcmp (kind, "cgroup") == 0)
    {
      snprintf (out, PATH_MAX, "%s%s", json_string_value (json_array_get (slot, 1)), cgroup_path);
      return out;
    }
  const char *source = item (in, "mounts", mount_index (in, json_array_get (slot, 1)), "source");
  if (source == NULL)
    return NULL;
  if (json_is_true (json_array_get (slot, 2)))
    {
      in_bundle (in, source, out);
      return out;
    }
  return source;
}

const char *
instance_join_path (struct instance *in, size_t index)
{
  return item (in, "namespaces", index, "path");
}

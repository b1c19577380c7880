/* sdbus.c - the unit a cgroupsPath names, and a minimal D-Bus client for
 * systemd's manager (sdbus.h says why).
 *
 * A D-Bus message (the D-Bus specification, "Message Format"): a 16-byte
 * header (endianness 'l', type, flags, version 1, body length, serial),
 * an array of header fields a(yv) (path, interface, member, destination,
 * signature...), padding to 8, then the body, every value aligned to its
 * own size from the message's start.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later */
#define _GNU_SOURCE
#include "sdbus.h"

#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* ---- the unit a cgroupsPath names ---------------------------------- */

/* systemd's unit_name_is_valid: [A-Za-z0-9:_.\\-] and at most 255. */
static bool
unit_chars_ok (const char *s)
{
  if (*s == '\0' || strlen (s) > 255)
    return false;
  for (; *s; s++)
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || strchr (":_.\\-@", *s)))
      return false;
  return true;
}

static bool
ends_with (const char *s, const char *suffix)
{
  size_t n = strlen (s), m = strlen (suffix);
  return n >= m && strcmp (s + n - m, suffix) == 0;
}

int
husk_sd_expand_slice (const char *slice, char *out, size_t size)
{
  out[0] = '\0';
  if (!ends_with (slice, ".slice") || strchr (slice, '/') || !unit_chars_ok (slice))
    return -1;
  if (strcmp (slice, "-.slice") == 0)
    return 0; /* the root slice is the hierarchy's root */
  size_t stem = strlen (slice) - strlen (".slice");
  if (stem == 0 || slice[0] == '-' || slice[stem - 1] == '-')
    return -1;
  size_t n = 0;
  for (size_t i = 0; i <= stem; i++)
    {
      if (i < stem && slice[i] != '-')
        continue;
      if (i > 0 && slice[i - 1] == '-')
        return -1; /* "a--b": an empty part */
      /* Each dash ends an ancestor: "a-b-c" has a, a-b, then a-b-c. */
      n += snprintf (out + n, size > n ? size - n : 0, "/%.*s.slice", (int) i, slice);
      if (n >= size)
        return -1;
    }
  return 0;
}

int
husk_sd_unit_of (const char *cgroups_path, const char *id, struct husk_sd_unit *out, char *err, size_t errlen)
{
  char parts[3][256] = { "system.slice", "husk", "" };
  if (cgroups_path == NULL || cgroups_path[0] == '\0')
    snprintf (parts[2], sizeof parts[2], "%s", id);
  else
    {
      const char *p = cgroups_path;
      for (int i = 0; i < 3; i++)
        {
          size_t n = strcspn (p, ":");
          if ((i < 2 && p[n] != ':') || (i == 2 && p[n] != '\0'))
            {
              snprintf (err, errlen, "%s: with --systemd-cgroup it must be \"slice:prefix:name\"", cgroups_path);
              return -1;
            }
          if (n >= sizeof parts[i])
            {
              snprintf (err, errlen, "%s: a part is longer than 255 bytes", cgroups_path);
              return -1;
            }
          if (n > 0 || i != 0) /* an empty slice is system.slice, as in runc */
            snprintf (parts[i], sizeof parts[i], "%.*s", (int) n, p);
          p += n + 1;
        }
    }
  const char *slice = parts[0], *prefix = parts[1], *name = parts[2];
  if (name[0] == '\0')
    {
      snprintf (err, errlen, "%s: the name (after the second ':') is empty", cgroups_path);
      return -1;
    }
  if (ends_with (name, ".slice")) /* the unit is that slice itself */
    snprintf (out->unit, sizeof out->unit, "%s", name);
  else if (snprintf (out->unit, sizeof out->unit, "%s%s%s.scope", prefix, *prefix ? "-" : "", name)
           >= (int) sizeof out->unit)
    out->unit[0] = '\0';
  if (!unit_chars_ok (out->unit) || strchr (out->unit, '/'))
    {
      snprintf (err, errlen, "%s: %s%s%s.scope is not a valid systemd unit name", cgroups_path, prefix,
                *prefix ? "-" : "", name);
      return -1;
    }
  char expanded[sizeof out->path - 256];
  if (husk_sd_expand_slice (slice, expanded, sizeof expanded) < 0)
    {
      snprintf (err, errlen, "%s: %s is not a valid slice name", cgroups_path, slice);
      return -1;
    }
  if (strcmp (name, "-.slice") == 0)
    {
      snprintf (err, errlen, "%s: the root slice is not a container's cgroup", cgroups_path);
      return -1;
    }
  if (ends_with (name, ".slice"))
    {
      /* A slice is nested by its own name: it must be the parent's child
       * (runc: "a-b.slice" in "a.slice"). */
      char own[sizeof out->path];
      if (husk_sd_expand_slice (name, own, sizeof own) < 0)
        {
          snprintf (err, errlen, "%s: %s is not a valid slice name", cgroups_path, name);
          return -1;
        }
      snprintf (out->slice, sizeof out->slice, "%s", slice);
      snprintf (out->path, sizeof out->path, "%s", own);
      return 0;
    }
  snprintf (out->slice, sizeof out->slice, "%s", slice);
  snprintf (out->path, sizeof out->path, "%s/%s", expanded, out->unit);
  return 0;
}

bool
husk_sd_booted (void)
{
  return access ("/run/systemd/system", F_OK) == 0;
}

/* ---- marshalling --------------------------------------------------- */

struct msg
{
  uint8_t *data;
  size_t len, cap;
  bool bad; /* out of memory, or a value that does not fit its type */
};

static void
put (struct msg *m, const void *p, size_t n)
{
  if (m->bad)
    return;
  if (m->len + n > m->cap)
    {
      size_t cap = m->cap ? m->cap : 256;
      while (cap < m->len + n)
        cap *= 2;
      uint8_t *more = realloc (m->data, cap);
      if (more == NULL)
        {
          m->bad = true;
          return;
        }
      m->data = more;
      m->cap = cap;
    }
  memcpy (m->data + m->len, p, n);
  m->len += n;
}

static void
align (struct msg *m, size_t to)
{
  static const uint8_t zeros[8];
  put (m, zeros, (to - m->len % to) % to);
}

static void
put_u32 (struct msg *m, uint32_t v)
{
  align (m, 4);
  put (m, &v, 4);
}

static void
put_u64 (struct msg *m, uint64_t v)
{
  align (m, 8);
  put (m, &v, 8);
}

static void
put_str (struct msg *m, const char *s)
{
  put_u32 (m, strlen (s));
  put (m, s, strlen (s) + 1);
}

static void
put_sig (struct msg *m, const char *s)
{
  uint8_t n = strlen (s);
  put (m, &n, 1);
  put (m, s, n + 1);
}

/* An array: its length (u32) comes first but is known only once its
 * elements are in.  The padding to the element's alignment follows the
 * length even when the array is empty, and is not counted in it. */
struct array
{
  size_t length_at, start;
};

static size_t alignment (char type);

static struct array
array_begin (struct msg *m, char element)
{
  put_u32 (m, 0);
  struct array a = { m->len - 4, 0 };
  align (m, alignment (element));
  a.start = m->len;
  return a;
}

static void
array_end (struct msg *m, struct array a)
{
  if (m->bad)
    return;
  uint32_t n = m->len - a.start;
  memcpy (m->data + a.length_at, &n, 4);
}

/* The end of the one complete type SIG starts with. */
static const char *
sig_end (const char *sig)
{
  if (*sig == 'a')
    return sig_end (sig + 1);
  if (*sig == '(' || *sig == '{')
    {
      const char *p = sig + 1;
      while (*p && *p != ')' && *p != '}')
        p = sig_end (p);
      return *p ? p + 1 : p;
    }
  return *sig ? sig + 1 : sig;
}

static size_t
alignment (char type)
{
  switch (type)
    {
    case 'y': case 'g': case 'v':
      return 1;
    case 'n': case 'q':
      return 2;
    case 'x': case 't': case 'd': case '(': case '{':
      return 8;
    default:
      return 4;
    }
}

/* V (JSON) as the complete type at the start of SIG. */
static void
put_value (struct msg *m, const char *sig, json_t *v)
{
  switch (*sig)
    {
    case 'y':
      {
        json_int_t i = json_integer_value (v);
        uint8_t b = i;
        m->bad |= !json_is_integer (v) || i < 0 || i > 255;
        put (m, &b, 1);
        return;
      }
    case 'b':
      m->bad |= !json_is_boolean (v);
      put_u32 (m, json_is_true (v));
      return;
    case 'i': case 'u':
      m->bad |= !json_is_integer (v);
      put_u32 (m, (uint32_t) json_integer_value (v));
      return;
    case 'x': case 't':
      m->bad |= !json_is_integer (v);
      put_u64 (m, (uint64_t) json_integer_value (v)); /* -1: UINT64_MAX, "infinity" */
      return;
    case 's': case 'o':
      m->bad |= !json_is_string (v);
      put_str (m, json_string_value (v) ?: "");
      return;
    case 'g':
      m->bad |= !json_is_string (v);
      put_sig (m, json_string_value (v) ?: "");
      return;
    case 'a':
      {
        m->bad |= !json_is_array (v);
        struct array a = array_begin (m, sig[1]);
        for (size_t i = 0; i < json_array_size (v); i++)
          put_value (m, sig + 1, json_array_get (v, i));
        array_end (m, a);
        return;
      }
    case '(':
      {
        m->bad |= !json_is_array (v);
        align (m, 8);
        size_t i = 0;
        for (const char *p = sig + 1; *p && *p != ')'; p = sig_end (p))
          put_value (m, p, json_array_get (v, i++));
        m->bad |= i != json_array_size (v);
        return;
      }
    default:
      m->bad = true; /* a type no property of ours has */
    }
}

/* One property (a(sv)'s element): name, then the variant. */
static void
put_property (struct msg *m, const char *name, const char *sig, json_t *value)
{
  align (m, 8);
  put_str (m, name);
  put_sig (m, sig);
  put_value (m, sig, value);
  m->bad |= *sig_end (sig) != '\0';
}

/* ---- unmarshalling: just what the replies and JobRemoved hold ------- */

struct reader
{
  const uint8_t *data;
  size_t len, at;
  bool bad;
};

static void
r_align (struct reader *r, size_t to)
{
  r->at += (to - r->at % to) % to;
  r->bad |= r->at > r->len;
}

static uint32_t
r_u32 (struct reader *r)
{
  r_align (r, 4);
  uint32_t v = 0;
  if (!r->bad && r->at + 4 <= r->len)
    memcpy (&v, r->data + r->at, 4);
  else
    r->bad = true;
  r->at += 4;
  return v;
}

/* A string (s, o) or, with SMALL, a signature (g): NUL-terminated in the
 * message; "" when it runs past the end. */
static const char *
r_str (struct reader *r, bool small)
{
  size_t n;
  if (small)
    {
      n = r->at < r->len ? r->data[r->at] : 0;
      r->bad |= r->at >= r->len;
      r->at += 1;
    }
  else
    n = r_u32 (r);
  if (r->bad || n >= r->len - r->at || r->data[r->at + n] != '\0')
    {
      r->bad = true;
      return "";
    }
  const char *s = (const char *) r->data + r->at;
  r->at += n + 1;
  return s;
}

struct message
{
  uint8_t type; /* 1 call, 2 return, 3 error, 4 signal */
  uint32_t reply_serial;
  const char *member, *error_name, *signature;
  struct reader body;
};

/* The header of the whole message DATA (little-endian only: this host's
 * order, the one systemd and dbus-daemon answer in). */
static bool
parse_message (const uint8_t *data, size_t len, struct message *out)
{
  memset (out, 0, sizeof *out);
  out->member = out->error_name = out->signature = "";
  if (len < 16 || data[0] != 'l')
    return false;
  out->type = data[1];
  uint32_t body_len, fields_len;
  memcpy (&body_len, data + 4, 4);
  memcpy (&fields_len, data + 12, 4);
  struct reader r = { data, 16 + fields_len, 16, false };
  if (r.len > len)
    return false;
  while (r.at < r.len && !r.bad)
    {
      r_align (&r, 8);
      if (r.at >= r.len)
        break;
      uint8_t code = data[r.at++];
      const char *sig = r_str (&r, true);
      if (strcmp (sig, "u") == 0)
        {
          uint32_t v = r_u32 (&r);
          if (code == 5)
            out->reply_serial = v;
        }
      else if (strcmp (sig, "s") == 0 || strcmp (sig, "o") == 0 || strcmp (sig, "g") == 0)
        {
          const char *s = r_str (&r, sig[0] == 'g');
          if (code == 3)
            out->member = s;
          else if (code == 4)
            out->error_name = s;
          else if (code == 8)
            out->signature = s;
        }
      else
        return false; /* no header field has another type */
    }
  size_t body_at = (16 + fields_len + 7) & ~(size_t) 7;
  if (r.bad || body_at + body_len != len)
    return false;
  out->body = (struct reader){ data + body_at, body_len, 0, false };
  return true;
}

/* ---- the connection ------------------------------------------------ */

static int
fail (struct husk_sd *sd, const char *fmt, ...)
{
  va_list ap;
  va_start (ap, fmt);
  vsnprintf (sd->error, sizeof sd->error, fmt, ap);
  va_end (ap);
  return -1;
}

static long long
now_ms (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

static int
send_all (struct husk_sd *sd, const void *p, size_t n)
{
  for (size_t done = 0; done < n;)
    {
      ssize_t w = send (sd->fd, (const char *) p + done, n - done, MSG_NOSIGNAL);
      if (w < 0 && errno == EINTR)
        continue;
      if (w < 0)
        return fail (sd, "systemd: D-Bus: send: %s", strerror (errno));
      done += w;
    }
  return 0;
}

/* Read more bytes into sd->in, waiting until DEADLINE (ms). */
static int
read_more (struct husk_sd *sd, long long deadline)
{
  if (sd->in_cap - sd->in_len < 4096)
    {
      size_t cap = sd->in_cap ? sd->in_cap * 2 : 8192;
      if (cap > (64u << 20))
        return fail (sd, "systemd: D-Bus: a message past 64 MiB");
      char *more = realloc (sd->in, cap);
      if (more == NULL)
        return fail (sd, "systemd: D-Bus: %s", strerror (ENOMEM));
      sd->in = more;
      sd->in_cap = cap;
    }
  for (;;)
    {
      long long left = deadline - now_ms ();
      if (left <= 0)
        return fail (sd, "systemd: no answer from systemd within %d s", 30);
      struct pollfd p = { sd->fd, POLLIN, 0 };
      int ready = poll (&p, 1, left > 1000 ? 1000 : (int) left);
      if (ready < 0 && errno != EINTR)
        return fail (sd, "systemd: D-Bus: poll: %s", strerror (errno));
      if (ready <= 0)
        continue;
      ssize_t n = recv (sd->fd, sd->in + sd->in_len, sd->in_cap - sd->in_len, 0);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return fail (sd, "systemd: D-Bus: receive: %s", strerror (errno));
      if (n == 0)
        return fail (sd, "systemd: D-Bus: the connection was closed");
      sd->in_len += n;
      return 0;
    }
}

/* The next whole message, copied to *OUT (malloc'd), by DEADLINE. */
static int
next_message (struct husk_sd *sd, long long deadline, uint8_t **out, size_t *out_len)
{
  for (;;)
    {
      if (sd->in_len >= 16)
        {
          uint32_t body_len, fields_len;
          memcpy (&body_len, sd->in + 4, 4);
          memcpy (&fields_len, sd->in + 12, 4);
          if (sd->in[0] != 'l' || body_len > (32u << 20) || fields_len > (1u << 20))
            return fail (sd, "systemd: D-Bus: a message husk cannot read");
          size_t total = ((16 + (size_t) fields_len + 7) & ~(size_t) 7) + body_len;
          if (sd->in_len >= total)
            {
              *out = malloc (total);
              if (*out == NULL)
                return fail (sd, "systemd: D-Bus: %s", strerror (ENOMEM));
              memcpy (*out, sd->in, total);
              *out_len = total;
              memmove (sd->in, sd->in + total, sd->in_len - total);
              sd->in_len -= total;
              return 0;
            }
        }
      if (read_more (sd, deadline) < 0)
        return -1;
    }
}

static void
remember_removed (struct husk_sd *sd, struct message *m)
{
  if (strcmp (m->member, "JobRemoved") != 0 || strcmp (m->signature, "uoss") != 0)
    return;
  r_u32 (&m->body);
  const char *job = r_str (&m->body, false);
  r_str (&m->body, false); /* the unit */
  const char *result = r_str (&m->body, false);
  if (m->body.bad)
    return;
  size_t i = sd->nremoved < 32 ? sd->nremoved++ : (memmove (sd->removed, sd->removed + 1, 31 * sizeof sd->removed[0]), 31);
  snprintf (sd->removed[i].job, sizeof sd->removed[i].job, "%s", job);
  snprintf (sd->removed[i].result, sizeof sd->removed[i].result, "%s", result);
}

/* A method call; its reply (return or error) in *REPLY and *DATA (free it). */
static int
call (struct husk_sd *sd, const char *dest, const char *path, const char *iface, const char *member, const char *sig,
      struct msg *body, struct message *reply, uint8_t **data)
{
  if (body->bad)
    return fail (sd, "systemd: %s: a property value does not fit its D-Bus type", member);
  uint32_t serial = ++sd->serial;
  struct msg m = { 0 };
  uint8_t head[4] = { 'l', 1, 0, 1 };
  put (&m, head, 4);
  put_u32 (&m, body->len);
  put_u32 (&m, serial);
  put_u32 (&m, 0); /* the fields' length, set below */
  struct
  {
    uint8_t code;
    const char *sig, *value;
  } fields[] = { { 1, "o", path }, { 2, "s", iface }, { 3, "s", member }, { 6, "s", dest }, { 8, "g", sig } };
  for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
    {
      if (fields[i].value == NULL || (fields[i].code == 8 && *fields[i].value == '\0'))
        continue;
      align (&m, 8);
      put (&m, &fields[i].code, 1);
      put_sig (&m, fields[i].sig);
      if (fields[i].sig[0] == 'g')
        put_sig (&m, fields[i].value);
      else
        put_str (&m, fields[i].value);
    }
  uint32_t fields_len = m.len - 16;
  align (&m, 8);
  put (&m, body->data, body->len);
  if (m.bad)
    {
      free (m.data);
      return fail (sd, "systemd: D-Bus: %s", strerror (ENOMEM));
    }
  memcpy (m.data + 12, &fields_len, 4);
  int rc = send_all (sd, m.data, m.len);
  free (m.data);
  if (rc < 0)
    return -1;
  long long deadline = now_ms () + 30000;
  for (;;)
    {
      size_t len;
      if (next_message (sd, deadline, data, &len) < 0)
        return -1;
      if (!parse_message (*data, len, reply))
        {
          free (*data);
          return fail (sd, "systemd: D-Bus: a message husk cannot read");
        }
      if ((reply->type == 2 || reply->type == 3) && reply->reply_serial == serial)
        return 0;
      if (reply->type == 4)
        remember_removed (sd, reply);
      free (*data);
    }
}

/* call() to systemd's manager; an error reply is -1 with its name and
 * text, and *ERROR_NAME (if given) says which. */
static int
manager (struct husk_sd *sd, const char *member, const char *sig, struct msg *body, char *job, size_t job_size,
         char *error_name, size_t error_size)
{
  struct message reply;
  uint8_t *data;
  if (error_name)
    error_name[0] = '\0';
  sd->error_name[0] = '\0';
  if (call (sd, "org.freedesktop.systemd1", "/org/freedesktop/systemd1", "org.freedesktop.systemd1.Manager",
            member, sig, body, &reply, &data) < 0)
    return -1;
  int rc = 0;
  if (reply.type == 3)
    {
      const char *text = strcmp (reply.signature, "s") == 0 ? r_str (&reply.body, false) : "";
      if (error_name)
        snprintf (error_name, error_size, "%s", reply.error_name);
      snprintf (sd->error_name, sizeof sd->error_name, "%s", reply.error_name);
      rc = fail (sd, "systemd: %s: %s%s%s", member, reply.error_name, *text ? ": " : "", text);
    }
  else if (job)
    {
      const char *path = strcmp (reply.signature, "o") == 0 ? r_str (&reply.body, false) : "";
      if (!*path || reply.body.bad)
        rc = fail (sd, "systemd: %s: no job in the reply", member);
      snprintf (job, job_size, "%s", path);
    }
  free (data);
  return rc;
}

/* Wait for JOB's JobRemoved; its result in RESULT ("done", "failed"...). */
static int
wait_job (struct husk_sd *sd, const char *job, char *result, size_t size)
{
  long long deadline = now_ms () + 30000;
  for (;;)
    {
      for (size_t i = 0; i < sd->nremoved; i++)
        if (strcmp (sd->removed[i].job, job) == 0)
          {
            snprintf (result, size, "%s", sd->removed[i].result);
            sd->removed[i] = sd->removed[--sd->nremoved];
            return 0;
          }
      uint8_t *data;
      size_t len;
      struct message m;
      if (next_message (sd, deadline, &data, &len) < 0)
        return -1;
      if (parse_message (data, len, &m) && m.type == 4)
        remember_removed (sd, &m);
      free (data);
    }
}

static int
connect_to (struct husk_sd *sd, const char *path)
{
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  if (strlen (path) >= sizeof addr.sun_path)
    return -1;
  strcpy (addr.sun_path, path);
  sd->fd = socket (AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (sd->fd < 0)
    return -1;
  if (connect (sd->fd, (struct sockaddr *) &addr, sizeof addr) < 0)
    {
      close (sd->fd);
      sd->fd = -1;
      return -1;
    }
  return 0;
}

/* SASL EXTERNAL (our uid, in hex of its decimal text), then BEGIN. */
static int
authenticate (struct husk_sd *sd)
{
  char uid[32], line[128] = "";
  snprintf (uid, sizeof uid, "%u", (unsigned) geteuid ());
  size_t n = snprintf (line, sizeof line, "%cAUTH EXTERNAL ", '\0');
  for (const char *p = uid; *p; p++)
    n += snprintf (line + n, sizeof line - n, "%02x", (unsigned char) *p);
  n += snprintf (line + n, sizeof line - n, "\r\n");
  if (send_all (sd, line, n) < 0)
    return -1;
  long long deadline = now_ms () + 30000;
  while (sd->in_len < 2 || memcmp (sd->in + sd->in_len - 2, "\r\n", 2) != 0)
    if (read_more (sd, deadline) < 0)
      return -1;
  if (sd->in_len < 3 || strncmp (sd->in, "OK ", 3) != 0)
    return fail (sd, "systemd: D-Bus: authentication refused: %.*s", (int) strcspn (sd->in, "\r"), sd->in);
  sd->in_len = 0;
  return send_all (sd, "BEGIN\r\n", 7);
}

int
husk_sd_connect (struct husk_sd *sd)
{
  memset (sd, 0, sizeof *sd);
  sd->fd = -1;
  const char *address = getenv ("DBUS_SYSTEM_BUS_ADDRESS");
  char bus[256] = "/run/dbus/system_bus_socket";
  if (address && strncmp (address, "unix:path=", 10) == 0)
    snprintf (bus, sizeof bus, "%.*s", (int) strcspn (address + 10, ","), address + 10);
  int bus_errno = 0;
  if (connect_to (sd, bus) == 0)
    sd->via_bus = true;
  else
    bus_errno = errno;
  if (sd->fd < 0 && geteuid () == 0 && connect_to (sd, "/run/systemd/private") < 0)
    return fail (sd, "systemd: connect to %s: %s, and to /run/systemd/private: %s", bus, strerror (bus_errno),
                 strerror (errno));
  if (sd->fd < 0)
    return fail (sd, "systemd: connect to %s: %s", bus, strerror (bus_errno));
  if (authenticate (sd) < 0)
    return -1;
  if (sd->via_bus)
    {
      struct msg none = { 0 };
      struct message reply;
      uint8_t *data;
      if (call (sd, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "Hello", "", &none,
                &reply, &data) < 0)
        return -1;
      free (data);
      if (reply.type == 3)
        return fail (sd, "systemd: D-Bus: Hello: %s", reply.error_name);
    }
  return 0;
}

void
husk_sd_close (struct husk_sd *sd)
{
  if (sd->fd >= 0)
    close (sd->fd);
  sd->fd = -1;
  free (sd->in);
  sd->in = NULL;
  sd->in_len = sd->in_cap = 0;
}

/* Through dbus-daemon, signals reach only those who asked: JobRemoved is
 * asked for before the call that makes the job.  systemd's private
 * socket sends it to every connection. */
static int
match_job_removed (struct husk_sd *sd)
{
  if (!sd->via_bus || sd->matching)
    return 0;
  struct msg body = { 0 };
  put_str (&body, "type='signal',sender='org.freedesktop.systemd1',interface='org.freedesktop.systemd1.Manager',"
                  "member='JobRemoved',path='/org/freedesktop/systemd1'");
  struct message reply;
  uint8_t *data;
  int rc = call (sd, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "AddMatch", "s", &body,
                 &reply, &data);
  free (body.data);
  if (rc < 0)
    return -1;
  free (data);
  if (reply.type == 3)
    return fail (sd, "systemd: D-Bus: AddMatch: %s", reply.error_name);
  sd->matching = true;
  return 0;
}

/* PROPS's [[name, signature, value], ...] into M. */
static int
put_props (struct husk_sd *sd, struct msg *m, const char *props)
{
  json_error_t error;
  json_t *list = json_loads (props ?: "[]", 0, &error);
  if (!json_is_array (list))
    {
      json_decref (list);
      return fail (sd, "systemd: unit properties: not a JSON list: %s", error.text);
    }
  for (size_t i = 0; i < json_array_size (list); i++)
    {
      json_t *p = json_array_get (list, i);
      const char *name = json_string_value (json_array_get (p, 0)), *sig = json_string_value (json_array_get (p, 1));
      if (name == NULL || sig == NULL || json_array_size (p) != 3)
        m->bad = true;
      else
        put_property (m, name, sig, json_array_get (p, 2));
      if (m->bad)
        {
          fail (sd, "systemd: unit property %s: a value husk cannot send", name ? name : "?");
          json_decref (list); /* after: it holds the name */
          return -1;
        }
    }
  json_decref (list);
  return 0;
}

static int
reset_failed (struct husk_sd *sd, const char *unit)
{
  struct msg body = { 0 };
  put_str (&body, unit);
  int rc = manager (sd, "ResetFailedUnit", "s", &body, NULL, 0, NULL, 0);
  free (body.data);
  return rc;
}

int
husk_sd_start_unit (struct husk_sd *sd, const char *unit, const char *slice, const char *description,
                    const char *props, pid_t pid)
{
  if (match_job_removed (sd) < 0)
    return -1;
  bool is_slice = ends_with (unit, ".slice");
  for (int attempt = 0;; attempt++)
    {
      struct msg body = { 0 };
      put_str (&body, unit);
      put_str (&body, "replace");
      struct array props_array = array_begin (&body, '(');
      json_t *text = json_string (description);
      put_property (&body, "Description", "s", text);
      json_decref (text);
      if (is_slice)
        {
          json_t *wants = json_pack ("[s]", slice);
          put_property (&body, "Wants", "as", wants);
          json_decref (wants);
        }
      else
        {
          json_t *s = json_string (slice), *pids = json_pack ("[i]", (json_int_t) pid), *yes = json_true ();
          put_property (&body, "Slice", "s", s);
          /* The container may make cgroups below its own (its cgroup
           * namespace's root): systemd leaves the subtree alone. */
          put_property (&body, "Delegate", "b", yes);
          put_property (&body, "PIDs", "au", pids);
          json_decref (s);
          json_decref (pids);
        }
      if (put_props (sd, &body, props) < 0)
        {
          free (body.data);
          return -1;
        }
      array_end (&body, props_array);
      array_end (&body, array_begin (&body, '(')); /* no auxiliary units: a(sa(sv)) */
      char job[256], error_name[256];
      int rc = manager (sd, "StartTransientUnit", "ssa(sv)a(sa(sv))", &body, job, sizeof job, error_name,
                        sizeof error_name);
      free (body.data);
      if (rc < 0 && attempt == 0 && strcmp (error_name, "org.freedesktop.systemd1.UnitExists") == 0)
        {
          /* A unit of this name is left over - failed (its last process
           * was OOM-killed, say) and not yet collected: reset it, so
           * systemd drops it, and try once more. */
          reset_failed (sd, unit);
          continue;
        }
      if (rc < 0)
        return -1;
      char result[32];
      if (wait_job (sd, job, result, sizeof result) < 0)
        return -1;
      if (strcmp (result, "done") != 0)
        return fail (sd, "systemd: start %s: the job ended %s", unit, result);
      return 0;
    }
}

int
husk_sd_stop_unit (struct husk_sd *sd, const char *unit)
{
  if (match_job_removed (sd) < 0)
    return -1;
  struct msg body = { 0 };
  put_str (&body, unit);
  put_str (&body, "replace");
  char job[256], error_name[256];
  int rc = manager (sd, "StopUnit", "ss", &body, job, sizeof job, error_name, sizeof error_name);
  free (body.data);
  if (rc < 0 && strcmp (error_name, "org.freedesktop.systemd1.NoSuchUnit") != 0)
    return -1;
  char result[32];
  if (rc == 0 && wait_job (sd, job, result, sizeof result) < 0)
    return -1;
  /* A unit that failed stays listed until reset: the next container of
   * this id would find it. */
  if (reset_failed (sd, unit) < 0 && !strstr (sd->error, "NoSuchUnit") && !strstr (sd->error, "not loaded"))
    return -1;
  sd->error[0] = '\0';
  return 0;
}

int
husk_sd_set_properties (struct husk_sd *sd, const char *unit, const char *props)
{
  struct msg body = { 0 };
  put_str (&body, unit);
  put_u32 (&body, 1); /* runtime: not written to /etc */
  struct array props_array = array_begin (&body, '(');
  if (put_props (sd, &body, props) < 0)
    {
      free (body.data);
      return -1;
    }
  array_end (&body, props_array);
  int rc = manager (sd, "SetUnitProperties", "sba(sv)", &body, NULL, 0, NULL, 0);
  free (body.data);
  return rc;
}

int
husk_sd_attach (struct husk_sd *sd, const char *unit, pid_t pid)
{
  struct msg body = { 0 };
  put_str (&body, unit);
  put_str (&body, "");
  struct array pids = array_begin (&body, 'u');
  put_u32 (&body, pid);
  array_end (&body, pids);
  char error_name[256];
  int rc = manager (sd, "AttachProcessesToUnit", "ssau", &body, NULL, 0, error_name, sizeof error_name);
  free (body.data);
  if (rc < 0 && strcmp (error_name, "org.freedesktop.DBus.Error.UnknownMethod") == 0)
    return 1;
  return rc;
}

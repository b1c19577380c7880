/* trace.c - the front end's side of --explain (native/src/trace.h).
 *
 * `husk --explain` (Python, runtime/core/explain.py) runs the front end
 * with HUSK_TRACE_FD naming a file open for appending.  Each step - the
 * front end's own, and husk-init's MSG_TRACE records it forwards - is one
 * JSON line there; Python's planning appends its own to the same file.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later */
#define _GNU_SOURCE
#include "front.h"
#include "husk_proto.h"
#include "trace.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int trace_fd = -1;

void
trace_open (void)
{
  husk_trace_who = "front end";
  const char *text = getenv ("HUSK_TRACE_FD");
  if (text == NULL)
    return;
  char *end;
  long fd = strtol (text, &end, 10);
  /* Only a file opened for appending: the steps of three processes
   * (the front end, planning, husk-init through us) go in one after
   * another, never over each other. */
  int flags = *text && !*end && fd > 2 && fd < 65536 ? fcntl ((int) fd, F_GETFL) : -1;
  if (flags < 0 || !(flags & O_APPEND))
    return;
  trace_fd = (int) fd;
  fcntl (trace_fd, F_SETFD, FD_CLOEXEC); /* no container, hook or husk-init gets it */
  husk_trace = 1;
}

static void
write_line (long long time_us, const char *who, const char *source, int line, const char *mechanism, const char *step,
            const char *call)
{
  char where[512];
  snprintf (where, sizeof where, "%s:%d", source, line);
  json_t *o = json_pack ("{s:I, s:s, s:s, s:s, s:s, s:s}", "t_us", (json_int_t) time_us, "who", who, "source", where,
                         "mechanism", mechanism, "step", step, "call", call);
  char *text = o ? json_dumps (o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
  if (text)
    {
      size_t n = strlen (text);
      text[n] = '\n';
      (void) !write (trace_fd, text, n + 1); /* one write: O_APPEND keeps the line whole */
    }
  free (text);
  json_decref (o);
}

void
trace_sink (long long time_us, const char *source, int line, const char *mechanism, const char *step,
            const char *call)
{
  if (trace_fd >= 0)
    write_line (time_us, husk_trace_who, source, line, mechanism, step, call);
}

void
trace_forward (const char *value, uint32_t len)
{
  if (trace_fd < 0 || husk_record_problem (husk_record_info (MSG_TRACE), value, len))
    return;
  int64_t t;
  uint32_t line;
  memcpy (&t, value, 8);
  memcpy (&line, value + 8, 4);
  const char *f[5];
  f[0] = value + 12;
  for (int i = 1; i < 5; i++)
    f[i] = f[i - 1] + strlen (f[i - 1]) + 1;
  /* The call is the rest of the record, which recv_record ends with a NUL. */
  write_line (t, f[0], f[1], (int) line, f[2], f[3], f[4]);
}

void
trace_plan (const char *plan, size_t len, char **out, size_t *out_len, int until)
{
  /* PLAN_TRACE goes right after PLAN_VERSION, the one record that must come first. */
  uint32_t head[2];
  memcpy (head, plan, sizeof head);
  size_t first = sizeof head + head[1];
  char *buf = malloc (len + 16);
  if (buf == NULL)
    fail ("explain: %s", strerror (ENOMEM));
  uint32_t rec[2] = { PLAN_TRACE, 8 };
  int64_t v = until;
  memcpy (buf, plan, first);
  memcpy (buf + first, rec, sizeof rec);
  memcpy (buf + first + 8, &v, 8);
  memcpy (buf + first + 16, plan + first, len - first);
  *out = buf;
  *out_len = len + 16;
}

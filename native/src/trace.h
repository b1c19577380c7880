/* trace.h - `husk --explain`'s record of each isolating step.
 *
 * A step is recorded where it happens, as it happens: the wall-clock
 * time (CLOCK_REALTIME, the one clock no time namespace offsets, so the
 * front end, husk-init and Python share one axis), the source line, who
 * took it (the front end, husk-init, the container init), its mechanism
 * ("namespaces", "mounts", ...), a stable step name that
 * runtime/core/explain.py explains, and the call with its key arguments.
 *
 * husk-init sends each step to the front end as a MSG_TRACE record
 * (trace.c); the front end writes its own and those to --explain's file
 * as JSON lines (front/trace.c).  Off, a step costs one predicted branch
 * on a global; built with -DHUSK_NO_TRACE it costs nothing at all, which
 * is how bench/run_bench.py --trace-cost measures the branch.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef HUSK_TRACE_H
#define HUSK_TRACE_H

/* Nonzero while steps are recorded (PLAN_TRACE, or the front end's
 * HUSK_TRACE_FD). */
extern int husk_trace;
/* Who is taking the steps: "front end", "husk-init", "container init". */
extern const char *husk_trace_who;

__attribute__ ((format (printf, 5, 6))) void trace_step (const char *file, int line, const char *mechanism,
                                                         const char *step, const char *fmt, ...);

#ifdef HUSK_NO_TRACE
#define TRACE(mechanism, step, ...)                                                                            \
  do                                                                                                           \
    if (0)                                                                                                     \
      trace_step (__FILE__, __LINE__, mechanism, step, __VA_ARGS__);                                           \
  while (0)
#else
#define TRACE(mechanism, step, ...)                                                                            \
  do                                                                                                           \
    if (__builtin_expect (husk_trace, 0))                                                                      \
      trace_step (__FILE__, __LINE__, mechanism, step, __VA_ARGS__);                                           \
  while (0)
#endif

/* Where each program puts a step: husk-init sends a MSG_TRACE record
 * (main.c), the front end writes a JSON line (front/trace.c). */
void trace_sink (long long time_us, const char *source, int line, const char *mechanism, const char *step,
                 const char *call);

/* Microseconds since the epoch (CLOCK_REALTIME). */
long long trace_now_us (void);
/* "native/src/rootfs.c" for __FILE__ "src/rootfs.c": where a reader finds
 * it from the top of the tree. */
const char *trace_source (const char *file, char *buf, unsigned size);

/* Names for a step's arguments, in rotating static buffers (husk-init
 * is single-threaded; a TRACE line may use a few at once). */
const char *trace_clone_flags (long long flags);
const char *trace_mount_flags (long long flags);
const char *trace_caps (unsigned long long mask);
const char *trace_escape (const char *text); /* a map's newlines as "; " */

#endif

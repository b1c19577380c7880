/* sdbus.h - the systemd cgroup driver's two parts that are not cgroupfs:
 * the unit a container's cgroupsPath names, and a minimal D-Bus client
 * for systemd's manager (org.freedesktop.systemd1).
 *
 * Under `husk --systemd-cgroup`, linux.cgroupsPath reads
 * "slice:prefix:name" (runc's rule): the container's cgroup is the
 * transient unit "prefix-name.scope" in that slice, made by systemd with
 * StartTransientUnit.  The unit's cgroup is then limited through
 * cgroupfs as well, so a daemon-reload cannot undo a limit.
 *
 * Why a client of our own: the front end is a static program (no
 * libsystemd), and it needs six method calls and one signal.  The wire
 * format is the D-Bus specification's: little-endian messages, SASL
 * EXTERNAL.  Python reaches the same code through cffi (update).
 *
 * SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef HUSK_SDBUS_H
#define HUSK_SDBUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* The unit a cgroupsPath names, and where its cgroup is. */
struct husk_sd_unit
{
  char slice[256]; /* "machine.slice" */
  char unit[256];  /* "libpod-<id>.scope", or a "*.slice" */
  char path[1024]; /* "/machine.slice/libpod-<id>.scope": the cgroup, below a hierarchy's root */
};

/* cgroupsPath "slice:prefix:name" (or "" for system.slice:husk:ID) as
 * runc reads it.  0, or -1 with why in ERR (the field is the caller's). */
int husk_sd_unit_of (const char *cgroups_path, const char *id, struct husk_sd_unit *out, char *err, size_t errlen);
/* A slice's cgroup, as systemd nests slices by their dashes:
 * "a-b-c.slice" -> "/a.slice/a-b.slice/a-b-c.slice"; "-.slice" -> "". */
int husk_sd_expand_slice (const char *slice, char *out, size_t size);
/* systemd is this host's init (sd_booted(3)). */
bool husk_sd_booted (void);

/* A connection to systemd: the system bus (DBUS_SYSTEM_BUS_ADDRESS or
 * /run/dbus/system_bus_socket), else as root systemd's own private
 * socket, which works without dbus-daemon. */
struct husk_sd
{
  int fd;
  uint32_t serial;
  bool via_bus;      /* through dbus-daemon: Hello and AddMatch */
  bool matching;     /* our AddMatch for JobRemoved is in place */
  char *in;          /* bytes read, not yet a whole message */
  size_t in_len, in_cap;
  struct
  {
    char job[128];
    char result[32];
  } removed[32];     /* JobRemoved signals seen before their job was asked for */
  size_t nremoved;
  char error[1024];  /* the last failure, one line */
  char error_name[256]; /* its D-Bus error name, if systemd answered one */
};

int husk_sd_connect (struct husk_sd *sd);
void husk_sd_close (struct husk_sd *sd);

/* PROPS: JSON [[name, signature, value], ...] (runtime/core/cgroups/
 * systemd.py makes them); a "t" or "x" value past int64 is written as
 * its two's complement (-1: infinity).  Each returns 0, or -1 with
 * sd->error set. */

/* StartTransientUnit(UNIT) with PROPS, Description and, for a scope,
 * Slice, Delegate and PIDs=[PID] (for a slice: Wants its parent);
 * waits for the job to end "done".  A failed unit of that name left over
 * is reset and the start tried once more. */
int husk_sd_start_unit (struct husk_sd *sd, const char *unit, const char *slice, const char *description,
                        const char *props, pid_t pid);
/* StopUnit, waiting for the job, then ResetFailedUnit; a unit that is
 * already gone is no error. */
int husk_sd_stop_unit (struct husk_sd *sd, const char *unit);
/* SetUnitProperties(UNIT, runtime, PROPS). */
int husk_sd_set_properties (struct husk_sd *sd, const char *unit, const char *props);
/* AttachProcessesToUnit(UNIT, "", [PID]) (systemd 238+); 1 when this
 * systemd lacks the method (the caller joins through cgroupfs). */
int husk_sd_attach (struct husk_sd *sd, const char *unit, pid_t pid);

#endif

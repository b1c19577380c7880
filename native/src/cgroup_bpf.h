/* cgroup_bpf.h - the cgroup v2 device controller: attach an eBPF program.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef HUSK_CGROUP_BPF_H
#define HUSK_CGROUP_BPF_H

#include "plan.h"

/* The plan's BPF_PROG_TYPE_CGROUP_DEVICE program, loaded and its cgroup
 * opened, not yet attached (both -1 if the plan has none).  Loading needs
 * the host's CAP_BPF, so stage 0 does it; attaching waits until the
 * container's device nodes exist, because the program also rules mknod:
 * linux.devices that linux.resources.devices does not allow must still
 * be created (runc, too, applies device rules only once the rootfs is
 * ready). */
struct device_program
{
  int prog, cgroup;
};

struct device_program load_device_program (struct plan *p);

/* Attach it to the container's cgroup and close its fds; nothing if it
 * was not loaded or is attached already. */
void attach_device_program (struct plan *p, struct device_program *dp);

#endif

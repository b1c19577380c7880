/* cgroup_bpf.h - the cgroup v2 device controller: attach an eBPF program.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef HUSK_CGROUP_BPF_H
#define HUSK_CGROUP_BPF_H

#include "plan.h"

/* Load the plan's BPF_PROG_TYPE_CGROUP_DEVICE program and attach it to
 * the container's cgroup (nothing if the plan has none). */
void attach_device_program (struct plan *p);

#endif

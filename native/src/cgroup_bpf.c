/* cgroup_bpf.c - see cgroup_bpf.h.
 *
 * The program (built by runtime/cgroups/devices_bpf.py) is loaded with
 * bpf(BPF_PROG_LOAD) and attached to the cgroup directory with
 * bpf(BPF_PROG_ATTACH, BPF_CGROUP_DEVICE).  BPF_F_ALLOW_MULTI keeps what a
 * parent cgroup attached in force too: the kernel allows an access only
 * if every program on the path allows it.  The attachment lives as long
 * as the cgroup; our fds can close.
 *
 * SPDX-License-Identifier: GPL-3.0-or-later */
#define _GNU_SOURCE
#include "cgroup_bpf.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

void
attach_device_program (struct plan *p)
{
  char log[4096] = "";
  union bpf_attr attr;

  if (p->device_bpf == NULL)
    return;
  memset (&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = (uintptr_t) p->device_bpf;
  attr.insn_cnt = p->device_bpf_len / sizeof (struct bpf_insn);
  attr.license = (uintptr_t) "GPL";
  attr.log_buf = (uintptr_t) log;
  attr.log_size = sizeof log;
  attr.log_level = 1;
  cleanup_close int prog = syscall (SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
  if (prog < 0)
    die (errno, "device cgroup", "load the eBPF device program: %.200s", log);

  cleanup_close int cg = open (p->device_bpf_cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (cg < 0)
    die (errno, "device cgroup", "open %s", p->device_bpf_cgroup);
  memset (&attr, 0, sizeof attr);
  attr.target_fd = cg;
  attr.attach_bpf_fd = prog;
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  if (syscall (SYS_bpf, BPF_PROG_ATTACH, &attr, sizeof attr) < 0)
    die (errno, "device cgroup", "attach the eBPF device program to %s", p->device_bpf_cgroup);
}

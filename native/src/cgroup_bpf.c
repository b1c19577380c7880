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
#include "trace.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

struct device_program
load_device_program (struct plan *p)
{
  struct device_program dp = { -1, -1 };
  char log[4096] = "";
  union bpf_attr attr;

  if (p->device_bpf == NULL)
    return dp;
  memset (&attr, 0, sizeof attr);
  attr.prog_type = BPF_PROG_TYPE_CGROUP_DEVICE;
  attr.insns = (uintptr_t) p->device_bpf;
  attr.insn_cnt = p->device_bpf_len / sizeof (struct bpf_insn);
  attr.license = (uintptr_t) "GPL";
  /* No verifier log on the first try: with log_level 1 the kernel fails
     the load with ENOSPC once a long program's log outgrows the buffer,
     even though the program is fine.  Only a refused program is loaded
     again, to say why (runc's cilium/ebpf does the same). */
  dp.prog = syscall (SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
  if (dp.prog < 0)
    {
      int saved = errno;
      attr.log_buf = (uintptr_t) log;
      attr.log_size = sizeof log;
      attr.log_level = 1;
      if (syscall (SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr) >= 0)
        die (saved, "device cgroup", "load the eBPF device program");
      die (saved, "device cgroup", "load the eBPF device program: %.200s", log);
    }
  dp.cgroup = open (p->device_bpf_cgroup, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dp.cgroup < 0)
    die (errno, "device cgroup", "open %s", p->device_bpf_cgroup);
  TRACE ("devices", "device_program", "bpf(BPF_PROG_LOAD, BPF_PROG_TYPE_CGROUP_DEVICE, %u instructions)",
         (unsigned) attr.insn_cnt);
  return dp;
}

void
attach_device_program (struct plan *p, struct device_program *dp)
{
  union bpf_attr attr;

  if (dp->prog < 0)
    return;
  memset (&attr, 0, sizeof attr);
  attr.target_fd = dp->cgroup;
  attr.attach_bpf_fd = dp->prog;
  attr.attach_type = BPF_CGROUP_DEVICE;
  attr.attach_flags = BPF_F_ALLOW_MULTI;
  if (syscall (SYS_bpf, BPF_PROG_ATTACH, &attr, sizeof attr) < 0)
    die (errno, "device cgroup", "attach the eBPF device program to %s", p->device_bpf_cgroup);
  close (dp->prog);
  close (dp->cgroup);
  dp->prog = dp->cgroup = -1;
  TRACE ("devices", "device_program", "bpf(BPF_PROG_ATTACH, %s, BPF_CGROUP_DEVICE)", p->device_bpf_cgroup);
}

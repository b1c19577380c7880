/* seccomp.h - build and load the process's syscall filter.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef HUSK_SECCOMP_H
#define HUSK_SECCOMP_H

#include "plan.h"

/* Load linux.seccomp with libseccomp (nothing if the plan has none). */
void load_seccomp (struct plan *p);

#endif

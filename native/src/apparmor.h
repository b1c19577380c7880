/* apparmor.h - enter the process's AppArmor profile at execve.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef HUSK_APPARMOR_H
#define HUSK_APPARMOR_H

#include "plan.h"

/* Ask AppArmor to switch to process.apparmorProfile at the next execve
 * (nothing if the plan names none). */
void apply_apparmor (struct plan *p);

#endif

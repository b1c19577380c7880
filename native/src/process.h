/* process.h - the process's own attributes: identity, capabilities,
 * limits, terminal, hooks, and the final execve.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef HUSK_PROCESS_H
#define HUSK_PROCESS_H

#include "plan.h"

#include <stdbool.h>

void apply_rlimits (struct plan *p);
/* setsid, then (with a terminal) a pty whose master goes to the console socket. */
void setup_terminal (struct plan *p);
/* groups, gids, uids and all five capability sets, then no_new_privs. */
void apply_identity (struct plan *p);
/* chdir to process.cwd and check we really are inside the root (CVE-2024-21626);
 * false: root may not enter it, call again AS_USER once the identity is set. */
bool enter_cwd (struct plan *p, bool as_user);
/* The program to exec: argv[0] searched in the container's PATH. */
const char *find_executable (struct plan *p, char *buf, size_t size);
/* Run the plan's hooks of one kind with state on stdin; dies if one fails. */
void run_hooks (struct plan *p, int kind, const char *state, size_t state_len);

#endif

/* rootfs.h - build the container's filesystem view.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef HUSK_ROOTFS_H
#define HUSK_ROOTFS_H

#include "plan.h"

/* Propagation, the rootfs bind, every mount, /dev.  Returns an O_PATH fd
 * of the rootfs mount; every later path is resolved inside it. */
int rootfs_prepare (struct plan *p, int in_userns);
/* sysctls, readonlyPaths, maskedPaths, root.readonly - still before
 * pivot_root, so the host's /dev/null can back the masks. */
void rootfs_finalize (struct plan *p, int rootfd);
/* pivot_root(".", ".") (or MS_MOVE + chroot with --no-pivot). */
void rootfs_pivot (struct plan *p, int rootfd);

#endif

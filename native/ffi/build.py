"""cffi (API mode) build of runtime.core._native: how Python reaches the
kernel and the plan protocol.

Two things, both compiled by gcc against the real headers so no number is
copied by hand:
  - the plan protocol's table (native/src/proto.c, from husk_proto.def),
    which runtime/core/process/protocol.py turns into its records;
  - the recipe's tables (native/src/recipe.c, from husk_recipe.def), which
    runtime/core/recipe.py checks what it compiles against;
  - libseccomp's action and comparison values, from <seccomp.h>, which
    runtime/core/linux/seccomp.py checks a profile against (husk-init
    passes them to the same libseccomp);
  - the systemd driver's unit naming and D-Bus client (native/src/sdbus.c),
    which runtime/core/cgroups/systemd.py uses, as the front end does;
  - the syscalls Python's os module lacks: openat2 (RESOLVE_IN_ROOT), the
    new mount API (fsopen/fsconfig/fsmount/move_mount), mount, umount2 and
    unshare, with their flags taken from <linux/openat2.h> and
    <linux/mount.h>.
setup.py builds it (cffi_modules); SPDX-License-Identifier: GPL-3.0-or-later
"""

import os

from cffi import FFI

HERE = os.path.dirname(os.path.abspath(__file__))
NATIVE = os.path.dirname(HERE)

CDEF = """
/* the plan protocol: husk_proto.h */
struct husk_record_info { uint32_t tag; const char *name; int kind; const char *field; };
struct husk_const_info { const char *name; int64_t value; };
extern const struct husk_record_info husk_records[];
extern const size_t husk_nrecords;
extern const struct husk_const_info husk_consts[];
extern const size_t husk_nconsts;
#define HUSK_KIND_EMPTY ...
#define HUSK_KIND_INT ...
#define HUSK_KIND_STR ...
#define HUSK_KIND_RAW ...
#define HUSK_KIND_SECCOMP_ARG ...
#define HUSK_KIND_ERROR ...
#define HUSK_KIND_TRACE ...

/* the recipe: husk_recipe.h */
struct husk_recipe_field { const char *section; const char *key; int types; };
struct husk_per_container { const char *field; uint32_t record; int how; };
extern const struct husk_recipe_field husk_recipe_fields[];
extern const size_t husk_nrecipe_fields;
extern const struct husk_per_container husk_per_container[];
extern const size_t husk_nper_container;
extern const struct husk_const_info husk_recipe_consts[];
extern const size_t husk_nrecipe_consts;
#define J_BOOL ...
#define J_INT ...
#define J_STRING ...
#define J_ARRAY ...
#define J_OBJECT ...
#define J_NULL ...
#define HUSK_FILL_ADDED ...
#define HUSK_FILL_SLOT ...
#define HUSK_FILL_STATE ...

/* libseccomp: <seccomp.h> */
#define SCMP_ACT_KILL_THREAD ...
#define SCMP_ACT_KILL_PROCESS ...
#define SCMP_ACT_TRAP ...
#define SCMP_ACT_LOG ...
#define SCMP_ACT_ALLOW ...
static const uint32_t HUSK_SCMP_ACT_ERRNO;   /* SCMP_ACT_ERRNO(0): the errno goes in the low 16 bits */
static const uint32_t HUSK_SCMP_ACT_TRACE;   /* SCMP_ACT_TRACE(0) */
#define SCMP_CMP_NE ...
#define SCMP_CMP_LT ...
#define SCMP_CMP_LE ...
#define SCMP_CMP_EQ ...
#define SCMP_CMP_GE ...
#define SCMP_CMP_GT ...
#define SCMP_CMP_MASKED_EQ ...

/* the systemd driver: sdbus.h */
struct husk_sd_unit { char slice[256]; char unit[256]; char path[1024]; };
int husk_sd_unit_of(const char *cgroups_path, const char *id, struct husk_sd_unit *out, char *err, size_t errlen);
int husk_sd_expand_slice(const char *slice, char *out, size_t size);
bool husk_sd_booted(void);
struct husk_sd { char error[1024]; ...; };
int husk_sd_connect(struct husk_sd *sd);
void husk_sd_close(struct husk_sd *sd);
int husk_sd_set_properties(struct husk_sd *sd, const char *unit, const char *props);
int husk_sd_start_unit(struct husk_sd *sd, const char *unit, const char *slice, const char *description,
                       const char *props, int pid);
int husk_sd_stop_unit(struct husk_sd *sd, const char *unit);
int husk_sd_attach(struct husk_sd *sd, const char *unit, int pid);

/* syscalls: each returns -1 and sets errno (ffi.errno) on failure */
struct open_how { uint64_t flags; uint64_t mode; uint64_t resolve; };
int husk_openat2(int dirfd, const char *path, struct open_how *how);
int husk_fsopen(const char *fstype, unsigned int flags);
int husk_fsconfig(int fd, unsigned int cmd, const char *key, const char *value, int aux);
int husk_fsmount(int fd, unsigned int flags, unsigned int attr_flags);
int husk_move_mount(int from_dirfd, const char *from_path, int to_dirfd, const char *to_path,
                    unsigned int flags);
int mount(const char *source, const char *target, const char *fstype, unsigned long flags, const void *data);
int umount2(const char *target, int flags);
int unshare(int flags);

#define RESOLVE_NO_XDEV ...
#define RESOLVE_NO_MAGICLINKS ...
#define RESOLVE_NO_SYMLINKS ...
#define RESOLVE_BENEATH ...
#define RESOLVE_IN_ROOT ...
#define FSCONFIG_SET_FLAG ...
#define FSCONFIG_SET_STRING ...
#define FSCONFIG_CMD_CREATE ...
#define FSOPEN_CLOEXEC ...
#define FSMOUNT_CLOEXEC ...
#define MOVE_MOUNT_F_EMPTY_PATH ...
#define AT_FDCWD ...
#define MNT_DETACH ...
#define CLONE_NEWNET ...
"""

SOURCE = """
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <linux/mount.h>   /* after sys/mount.h: glibc's defines win, linux's add the rest */
#include <seccomp.h>
#include "husk_proto.h"
#include "husk_recipe.h"
#include "../src/sdbus.h" /* not -Isrc: its seccomp.h would hide libseccomp's */

/* Function-like macros cffi cannot name: their values with no argument. */
static const uint32_t HUSK_SCMP_ACT_ERRNO = SCMP_ACT_ERRNO (0);
static const uint32_t HUSK_SCMP_ACT_TRACE = SCMP_ACT_TRACE (0);

/* glibc 2.36 has no wrappers for these: syscall(2) by number, from the
 * kernel's own <sys/syscall.h>. */
int husk_openat2 (int dirfd, const char *path, struct open_how *how)
{ return syscall (SYS_openat2, dirfd, path, how, sizeof *how); }
int husk_fsopen (const char *fstype, unsigned int flags)
{ return syscall (SYS_fsopen, fstype, flags); }
int husk_fsconfig (int fd, unsigned int cmd, const char *key, const char *value, int aux)
{ return syscall (SYS_fsconfig, fd, cmd, key, value, aux); }
int husk_fsmount (int fd, unsigned int flags, unsigned int attr_flags)
{ return syscall (SYS_fsmount, fd, flags, attr_flags); }
int husk_move_mount (int from_dirfd, const char *from_path, int to_dirfd, const char *to_path, unsigned int flags)
{ return syscall (SYS_move_mount, from_dirfd, from_path, to_dirfd, to_path, flags); }
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "runtime.core._native", SOURCE,
    sources=[os.path.relpath(os.path.join(NATIVE, "src", name)) for name in ("proto.c", "recipe.c", "sdbus.c")],
    include_dirs=[os.path.relpath(os.path.join(NATIVE, "include"))],
    libraries=["jansson"],
    extra_compile_args=["-Wall", "-Werror", "-Wno-unused-function", "-Wno-unused-parameter"],
)


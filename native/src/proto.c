/* proto.c - the record table of husk_proto.def, shared by husk-init, the
 * C front end and (through cffi) the Python encoder.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include "husk_proto.h"

#include <string.h>

const struct husk_record_info husk_records[] = {
#define HUSK_RECORD(name, tag, kind, field) { tag, #name, HUSK_KIND_##kind, field },
#define HUSK_CONST(name, value)
#include "husk_proto.def"
#undef HUSK_RECORD
#undef HUSK_CONST
};
const size_t husk_nrecords = sizeof husk_records / sizeof husk_records[0];

const struct husk_const_info husk_consts[] = {
#define HUSK_RECORD(name, tag, kind, field)
#define HUSK_CONST(name, value) { #name, value },
#include "husk_proto.def"
#undef HUSK_RECORD
#undef HUSK_CONST
};
const size_t husk_nconsts = sizeof husk_consts / sizeof husk_consts[0];

const struct husk_record_info *
husk_record_info (uint32_t tag)
{
  for (size_t i = 0; i < husk_nrecords; i++)
    if (husk_records[i].tag == tag)
      return &husk_records[i];
  return NULL;
}

const char *
husk_record_problem (const struct husk_record_info *info, const char *value, uint32_t len)
{
  switch (info->kind)
    {
    case HUSK_KIND_EMPTY:
      return len == 0 ? NULL : "carries a value where none belongs";
    case HUSK_KIND_INT:
      return len == 8 ? NULL : "is not an 8-byte integer";
    case HUSK_KIND_STR:
      /* C reads strings to their first NUL: one inside would cut a path
       * or an argument short without a word. */
      return memchr (value, '\0', len) == NULL ? NULL : "holds a NUL byte";
    case HUSK_KIND_SECCOMP_ARG:
      return len == 24 ? NULL : "is not a 24-byte seccomp argument";
    case HUSK_KIND_ERROR:
      return len > 4 && memchr (value + 4, '\0', len - 4) != NULL ? NULL : "is not an error record";
    case HUSK_KIND_TRACE:
      {
        /* Four NUL-terminated fields after the time and the line. */
        int fields = 0;
        for (uint32_t i = 12; i < len; i++)
          fields += value[i] == '\0';
        return len > 12 && fields == 4 ? NULL : "is not a trace record";
      }
    default:
      return NULL;
    }
}

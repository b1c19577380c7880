/* opts.h - a verb's flags, click's way: --long VALUE, --long=VALUE, -s
 * VALUE, flags anywhere among the arguments unless `strict` (run), and
 * "--" ending the flags.  A flag the table does not hold, or too many
 * arguments, hands the command to Python, which explains the mistake.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#ifndef HUSK_FRONT_OPTS_H
#define HUSK_FRONT_OPTS_H

#include "front.h"

#include <string.h>

struct opt
{
  const char *name; /* "--bundle" */
  char short_name;  /* 'b', or 0 */
  const char **value; /* for a flag with a value */
  bool *flag;         /* for a flag without */
};

static inline int
parse_args (int argc, char **argv, const char **out, int max, struct opt *opts, bool strict)
{
  int n = 0;
  bool only_args = false;
  for (int i = 0; i < argc; i++)
    {
      const char *a = argv[i];
      if (only_args || a[0] != '-' || a[1] == '\0')
        {
          if (n == max)
            python ();
          out[n++] = a;
          only_args |= strict;
          continue;
        }
      if (strcmp (a, "--") == 0)
        {
          only_args = true;
          continue;
        }
      struct opt *o = opts;
      const char *inline_value = NULL;
      for (; o && o->name; o++)
        {
          size_t len = strlen (o->name);
          if (strncmp (a, o->name, len) == 0 && (a[len] == '\0' || (a[len] == '=' && o->value)))
            {
              inline_value = a[len] == '=' ? a + len + 1 : NULL;
              break;
            }
          if (o->short_name && a[1] == o->short_name && a[2] == '\0')
            break;
        }
      if (o == NULL || o->name == NULL)
        python ();
      if (o->flag)
        *o->flag = true;
      else if (inline_value)
        *o->value = inline_value;
      else if (i + 1 < argc)
        *o->value = argv[++i];
      else
        python ();
    }
  return n;
}

static inline int
positionals (int argc, char **argv, const char **out, int max, struct opt *opts)
{
  return parse_args (argc, argv, out, max, opts, false);
}

static inline const char *
one_id (int argc, char **argv, struct opt *opts)
{
  const char *id = NULL;
  if (positionals (argc, argv, &id, 1, opts) != 1)
    python ();
  return id;
}

#endif

/* recipe.c - the tables of husk_recipe.def, shared by the C front end and
 * (through cffi) runtime/core/recipe.py.
 * SPDX-License-Identifier: GPL-3.0-or-later */
#include "husk_recipe.h"

const struct husk_recipe_field husk_recipe_fields[] = {
#define HUSK_RECIPE_CONST(name, value)
#define HUSK_RECIPE_FIELD(section, key, types) { section, key, types },
#define HUSK_PER_CONTAINER(field, record, how)
#include "husk_recipe.def"
#undef HUSK_RECIPE_CONST
#undef HUSK_RECIPE_FIELD
#undef HUSK_PER_CONTAINER
};
const size_t husk_nrecipe_fields = sizeof husk_recipe_fields / sizeof husk_recipe_fields[0];

const struct husk_per_container husk_per_container[] = {
#define HUSK_RECIPE_CONST(name, value)
#define HUSK_RECIPE_FIELD(section, key, types)
#define HUSK_PER_CONTAINER(field, record, how) { field, record, HUSK_FILL_##how },
#include "husk_recipe.def"
#undef HUSK_RECIPE_CONST
#undef HUSK_RECIPE_FIELD
#undef HUSK_PER_CONTAINER
};
const size_t husk_nper_container = sizeof husk_per_container / sizeof husk_per_container[0];

const struct husk_const_info husk_recipe_consts[] = {
#define HUSK_RECIPE_CONST(name, value) { #name, value },
#define HUSK_RECIPE_FIELD(section, key, types)
#define HUSK_PER_CONTAINER(field, record, how)
#include "husk_recipe.def"
#undef HUSK_RECIPE_CONST
#undef HUSK_RECIPE_FIELD
#undef HUSK_PER_CONTAINER
};
const size_t husk_nrecipe_consts = sizeof husk_recipe_consts / sizeof husk_recipe_consts[0];

const struct husk_per_container *
husk_per_container_of (uint32_t record)
{
  for (size_t i = 0; record && i < husk_nper_container; i++)
    if (husk_per_container[i].record == record)
      return &husk_per_container[i];
  return NULL;
}

# Compiles migrations/NNNN_*.sql into a C++ source, one raw string literal per
# file, so the schema ships inside the binary.
#
# Run as a script: cmake -DMIGRATIONS_DIR=... -DOUTPUT=... -P EmbedMigrations.cmake
# The files must be numbered 0001, 0002, ... without gaps: a gap means a file
# was lost, and applying the others in order would build the wrong schema.

file(GLOB sql_files RELATIVE ${MIGRATIONS_DIR} ${MIGRATIONS_DIR}/*.sql)
list(SORT sql_files)

set(delimiter "dmarcd_sql")
set(entries "")
set(expected 1)
foreach(file IN LISTS sql_files)
  if(NOT file MATCHES "^([0-9][0-9][0-9][0-9])_[a-z0-9_]+\\.sql$")
    message(FATAL_ERROR "migration ${file}: name must be NNNN_what_it_does.sql")
  endif()
  math(EXPR version "${CMAKE_MATCH_1}")
  if(NOT version EQUAL expected)
    message(FATAL_ERROR "migration ${file}: expected number ${expected}")
  endif()
  math(EXPR expected "${expected} + 1")

  file(READ ${MIGRATIONS_DIR}/${file} sql)
  string(FIND "${sql}" ")${delimiter}\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "migration ${file} contains the literal delimiter")
  endif()
  string(APPEND entries "    {${version}, \"${file}\", R\"${delimiter}(${sql})${delimiter}\"},\n")
endforeach()

if(expected EQUAL 1)
  message(FATAL_ERROR "no migrations found in ${MIGRATIONS_DIR}")
endif()

set(content "// Generated from migrations/*.sql by cmake/EmbedMigrations.cmake. Do not edit.
#include \"storage/migrations.hpp\"

namespace dmarcd::storage {

std::span<const Migration> Migrations() {
  static constexpr Migration kMigrations[] = {
${entries}  };
  return kMigrations;
}

}  // namespace dmarcd::storage
")

# Rewrite only on change so that an unchanged schema does not rebuild.
if(EXISTS ${OUTPUT})
  file(READ ${OUTPUT} previous)
endif()
if(NOT "${previous}" STREQUAL "${content}")
  file(WRITE ${OUTPUT} "${content}")
endif()

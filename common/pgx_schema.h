/* pgx_schema.h — the migrations compiled in from schema/ (see scripts/embed-sql.sh). */
#ifndef PGX_SCHEMA_H
#define PGX_SCHEMA_H

struct pgx_migration {
    const char *version; /* file name without .sql, e.g. "001_init" */
    const char *sql;
};

extern const struct pgx_migration pgx_migrations[];
extern const int pgx_migrations_count;

#endif

/* opts.h — command line and environment of kline-producer. */
#ifndef PROD_OPTS_H
#define PROD_OPTS_H

#include "opt.h"

/* The option table with the program's synopsis (for usage errors found later). */
extern const kp_opt_prog_t opts_prog;

/* Fills prod_cfg; exits 0 for --help/--version and 2 on a usage error. */
int opts_parse(int argc, char **argv, int *log_level);

#endif

/* opts.h — command line and environment of kline-producer. */
#ifndef PROD_OPTS_H
#define PROD_OPTS_H

/* Fills prod_cfg; exits 0 for --help/--version and 2 on a usage error. */
int opts_parse(int argc, char **argv, int *log_level);
const char *opts_synopsis_text(void);

#endif

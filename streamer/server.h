/* server.h — lws context and service loop of kline-streamer (server.c). */
#ifndef ST_SERVER_H
#define ST_SERVER_H

#include "streamer.h"

int  st_server_create(const struct st_config *cfg, char *errbuf, size_t errlen);
struct lws_context *st_server_context(void);
int  st_server_port(void);
/* Services until SIGINT/SIGTERM, then closes every client with 1001 (bounded wait). */
void st_server_run(void);
void st_server_destroy(void);

#endif

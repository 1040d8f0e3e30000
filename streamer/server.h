/* server.h — lws context (server.c) and service loop (loop.c) of kline-streamer. */
#ifndef ST_SERVER_H
#define ST_SERVER_H

#include "streamer.h"

int  st_server_create(const struct st_config *cfg, char *errbuf, size_t errlen);
struct lws_context *st_server_context(void);
int  st_server_port(void);
void st_server_destroy(void);

/* loop.c: the lws thread's loop. */
/* --event-loop uv: creates the libuv loop lws runs on (*uv_loop; NULL for poll). */
int  st_loop_init(const struct st_config *cfg, void **uv_loop, char *errbuf, size_t errlen);
void st_loop_start(struct lws_context *ctx);   /* the periodic tick */
/* LWS_CALLBACK_EVENT_WAIT_CANCELLED: takes what the feed and the database workers handed over. */
void st_loop_drain(void);
/* Services until SIGINT/SIGTERM, then closes every client with 1001 (bounded wait). */
void st_loop_run(void);
void st_loop_stop(void);   /* before the context is destroyed: cancels the loop's timers */
void st_loop_close(void);  /* after: lets libuv finish lws's handles, closes the loop */

#endif

/* accept.h: the connection layer of the public listener: TLS handshake, ALPN dispatch, per-connection policy */
#ifndef RELAY_ACCEPT_H
#define RELAY_ACCEPT_H

#include <h2o.h>
#include "worker.h"

#define RELAY_H2_STREAMS_PER_CONN 10000    /* streams one HTTP/2 connection may open over its life; then a graceful GOAWAY */
#define RELAY_H2_CONTINUATIONS_MAX 32      /* CONTINUATION frames in one header block; more: GOAWAY */
#define RELAY_H2_CONCURRENT_REQUESTS 16    /* requests (and so long-polls) running at once on one HTTP/2 connection */
#define RELAY_ACCEPT_RETRY_MS 100          /* out of descriptors: accepting resumes after this, or when one closes */
#define RELAY_CONNECTIONS_HEADROOM 32      /* descriptors kept from --max-connections' default: admin, stdio, ... */
#define RELAY_CONNECTIONS_PER_WORKER_FDS 4 /* ... and per worker: its listener, Redis connections, its queue */

/* the default of --max-connections: the descriptor limit less the headroom, at least 1 */
unsigned relay_accept_default_max(unsigned long nofile, size_t nworkers);
/* starts accepting on the worker's listener (w->listener), at most w->max_connections open at once */
void relay_accept_start(relay_worker_t *w);
/* stops accepting for good (shutdown): closes the listener */
void relay_accept_stop(relay_worker_t *w);
/* takes a new connection: the PROXY header (--proxy-protocol), the TLS handshake, then HTTP/2 (with the stream guard)
 * or HTTP/1.1 */
void relay_accept(relay_worker_t *w, h2o_socket_t *sock);
/* the per-client admission for costly requests (session creation, callbacks): 1 allowed (or the limiter is off), 0
 * limited with *retry_after in seconds. The client's address is the connection's peer, the PROXY header's source
 * (--proxy-protocol), or what Forwarded / X-Forwarded-For say when the peer is a --trusted-proxy; it is hashed, never
 * kept or logged. */
int relay_accept_rate_allowed(h2o_req_t *req, int *retry_after);

#endif

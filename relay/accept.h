/* accept.h: the connection layer of the public listener: TLS handshake, ALPN dispatch, per-connection policy */
#ifndef RELAY_ACCEPT_H
#define RELAY_ACCEPT_H

#include <h2o.h>
#include "worker.h"

/* takes a new connection: TLS handshake, then HTTP/2 (with the stream-reset guard) or HTTP/1.1 */
void relay_accept(relay_worker_t *w, h2o_socket_t *sock);
/* the per-client admission for costly requests (session creation, callbacks): 1 allowed (or the limiter is off), 0
 * limited with *retry_after in seconds. The client's address is hashed, never kept or logged. */
int relay_accept_rate_allowed(h2o_req_t *req, int *retry_after);

#endif

/* router.h: the public listener's one handler */
#ifndef RELAY_ROUTER_H
#define RELAY_ROUTER_H

#include <h2o.h>

/* limits, the connection layer's admission (rate limit), then dispatch by exact path and method to a route */
int relay_on_req(h2o_handler_t *self, h2o_req_t *req);

#endif

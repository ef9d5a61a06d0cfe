/* serve.h: the server's life: start-up, worker threads, signals, graceful shutdown */
#ifndef RELAY_SERVE_H
#define RELAY_SERVE_H

#include "config.h"

/* runs the relay until SIGTERM/SIGINT; the process exit status (0 after a clean shutdown, 1 on a start-up failure).
 * cfg is borrowed and must outlive the call. */
int relay_serve(relay_config_t *cfg);

#endif

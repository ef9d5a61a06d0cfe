/* admin.h: the admin listener (plain HTTP, its own thread): /healthz, /readyz, /metrics */
#ifndef RELAY_ADMIN_H
#define RELAY_ADMIN_H

#include <stddef.h>
#include "worker.h"

/* binds the admin address and starts its thread; r is borrowed until relay_admin_stop. 0 / -1 with a message in err */
int relay_admin_start(relay_t *r, char *err, size_t errlen);
void relay_admin_stop(void);

#endif

/* listen.h: one listening-socket function for the public and the admin listener */
#ifndef RLY_LISTEN_H
#define RLY_LISTEN_H

#include <stddef.h>
#include <sys/socket.h>

#define RLY_LISTEN_REUSEPORT 1 /* SO_REUSEPORT: one socket per worker thread on the same address */
#define RLY_LISTEN_NODELAY 2   /* TCP_NODELAY on accepted sockets */

/*
 * A non-blocking, close-on-exec TCP socket listening on the address: SO_REUSEADDR always, IPV6_V6ONLY for IPv6, the
 * flags above as asked, backlog as given (<= 0: SOMAXCONN). The descriptor, or -1 (errno kept) with "cannot listen on
 * <text>: <cause>" in err (text NULL: the address is written out, e.g. "[::1]:8443"). The caller closes the descriptor.
 */
int rly_listen(const struct sockaddr *sa, socklen_t salen, const char *text, int flags, int backlog, char *err, size_t errlen);

#endif

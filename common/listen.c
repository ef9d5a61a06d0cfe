/* listen.c: the one listening-socket function: options, bind and listen, and an error that names the address */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include "listen.h"

/* the address as text when the caller gave none: "a.b.c.d:port" or "[v6]:port" */
static const char *address_text(const struct sockaddr *sa, char *buf, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *sin = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
        snprintf(buf, cap, "%s:%u", host, (unsigned)ntohs(sin->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
        snprintf(buf, cap, "[%s]:%u", host, (unsigned)ntohs(sin6->sin6_port));
    } else {
        snprintf(buf, cap, "(address family %d)", (int)sa->sa_family);
    }
    return buf;
}

int rly_listen(const struct sockaddr *sa, socklen_t salen, const char *text, int flags, int backlog, char *err, size_t errlen)
{
    char textbuf[INET6_ADDRSTRLEN + 16];
    int fd = -1, on = 1, saved;

    if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6) {
        errno = EAFNOSUPPORT;
        goto Error;
    }
    if ((fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0)) == -1)
        goto Error;
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0)
        goto Error;
    if ((flags & RLY_LISTEN_REUSEPORT) != 0 && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof(on)) != 0)
        goto Error;
    /* Linux: accepted sockets inherit TCP_NODELAY from their listener */
    if ((flags & RLY_LISTEN_NODELAY) != 0 && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof(on)) != 0)
        goto Error;
    /* [::]:port means IPv6 only: an IPv4 listener on the same port is a listener of its own */
    if (sa->sa_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof(on)) != 0)
        goto Error;
    if (bind(fd, sa, salen) != 0 || listen(fd, backlog > 0 ? backlog : SOMAXCONN) != 0)
        goto Error;
    return fd;

Error:
    saved = errno;
    if (text == NULL)
        text = address_text(sa, textbuf, sizeof(textbuf));
    snprintf(err, errlen, "cannot listen on %s: %s", text, strerror(saved));
    if (fd != -1)
        close(fd);
    errno = saved;
    return -1;
}

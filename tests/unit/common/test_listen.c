/* test_listen.c: unit tests of the listening-socket function (common/listen.c) on loopback addresses */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <cmocka.h>

#include "listen.h"

static struct sockaddr_in v4(const char *ip, unsigned short port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons(port)};
    assert_int_equal(inet_pton(AF_INET, ip, &sin.sin_addr), 1);
    return sin;
}

static struct sockaddr_in6 v6(const char *ip, unsigned short port)
{
    struct sockaddr_in6 sin6 = {.sin6_family = AF_INET6, .sin6_port = htons(port)};
    assert_int_equal(inet_pton(AF_INET6, ip, &sin6.sin6_addr), 1);
    return sin6;
}

static int sockopt(int fd, int level, int name)
{
    int v = -1;
    socklen_t len = sizeof(v);
    assert_int_equal(getsockopt(fd, level, name, &v, &len), 0);
    return v;
}

static unsigned short bound_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    assert_int_equal(getsockname(fd, (struct sockaddr *)&ss, &len), 0);
    return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

/* the kernel speaks IPv6 (a container may have it off) */
static int have_ipv6(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM, 0);
    if (fd == -1)
        return 0;
    close(fd);
    return 1;
}

static void assert_listener(int fd)
{
    assert_true(fd >= 0);
    assert_int_equal(sockopt(fd, SOL_SOCKET, SO_ACCEPTCONN), 1);
    assert_int_equal(sockopt(fd, SOL_SOCKET, SO_REUSEADDR), 1);
    assert_int_equal(sockopt(fd, SOL_SOCKET, SO_TYPE), SOCK_STREAM);
    assert_true((fcntl(fd, F_GETFL) & O_NONBLOCK) != 0);
    assert_true((fcntl(fd, F_GETFD) & FD_CLOEXEC) != 0);
    assert_int_not_equal(bound_port(fd), 0);
}

static void test_ipv4(void **state)
{
    struct sockaddr_in sin = v4("127.0.0.1", 0);
    char err[256] = "";
    int fd;

    (void)state;
    fd = rly_listen((struct sockaddr *)&sin, sizeof(sin), "127.0.0.1:0", 0, 0, err, sizeof(err));
    assert_listener(fd);
    assert_string_equal(err, "");
    assert_int_equal(sockopt(fd, SOL_SOCKET, SO_REUSEPORT), 0);
    assert_int_equal(sockopt(fd, IPPROTO_TCP, TCP_NODELAY), 0);
    close(fd);
}

static void test_ipv6(void **state)
{
    struct sockaddr_in6 sin6 = v6("::1", 0);
    char err[256] = "";
    int fd;

    (void)state;
    if (!have_ipv6())
        skip();
    fd = rly_listen((struct sockaddr *)&sin6, sizeof(sin6), "[::1]:0", 0, 16, err, sizeof(err));
    if (fd == -1)
        fail_msg("%s", err);
    assert_listener(fd);
    assert_int_equal(sockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY), 1);
    close(fd);
}

/* [::]:P is IPv6 only: 0.0.0.0:P is free for a listener of its own */
static void test_ipv6_wildcard_v6only(void **state)
{
    struct sockaddr_in6 any6 = v6("::", 0);
    struct sockaddr_in any4;
    char err[256];
    int fd6, fd4;

    (void)state;
    if (!have_ipv6())
        skip();
    fd6 = rly_listen((struct sockaddr *)&any6, sizeof(any6), NULL, 0, 0, err, sizeof(err));
    if (fd6 == -1)
        fail_msg("%s", err);
    assert_int_equal(sockopt(fd6, IPPROTO_IPV6, IPV6_V6ONLY), 1);
    any4 = v4("0.0.0.0", bound_port(fd6));
    fd4 = rly_listen((struct sockaddr *)&any4, sizeof(any4), NULL, 0, 0, err, sizeof(err));
    if (fd4 == -1)
        fail_msg("%s", err);
    assert_int_equal(bound_port(fd4), bound_port(fd6));
    close(fd4);
    close(fd6);
}

static void test_reuseport(void **state)
{
    struct sockaddr_in sin = v4("127.0.0.1", 0);
    char err[256];
    int a, b;

    (void)state;
    a = rly_listen((struct sockaddr *)&sin, sizeof(sin), "a", RLY_LISTEN_REUSEPORT, 0, err, sizeof(err));
    assert_listener(a);
    assert_int_equal(sockopt(a, SOL_SOCKET, SO_REUSEPORT), 1);
    /* a second socket per worker on the same address */
    sin.sin_port = htons(bound_port(a));
    b = rly_listen((struct sockaddr *)&sin, sizeof(sin), "b", RLY_LISTEN_REUSEPORT, 0, err, sizeof(err));
    if (b == -1)
        fail_msg("%s", err);
    assert_int_equal(bound_port(b), bound_port(a));
    assert_int_equal(sockopt(b, SOL_SOCKET, SO_REUSEPORT), 1);
    close(b);
    close(a);
}

static void test_nodelay(void **state)
{
    struct sockaddr_in sin = v4("127.0.0.1", 0);
    char err[256];
    int l, c, s = -1;

    (void)state;
    l = rly_listen((struct sockaddr *)&sin, sizeof(sin), NULL, RLY_LISTEN_NODELAY, 0, err, sizeof(err));
    assert_listener(l);
    assert_int_equal(sockopt(l, IPPROTO_TCP, TCP_NODELAY), 1);
    /* an accepted socket inherits it */
    sin.sin_port = htons(bound_port(l));
    assert_true((c = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
    assert_int_equal(connect(c, (struct sockaddr *)&sin, sizeof(sin)), 0);
    for (int i = 0; i != 1000 && s == -1; ++i) {
        if ((s = accept(l, NULL, NULL)) == -1) {
            assert_true(errno == EAGAIN || errno == EWOULDBLOCK);
            usleep(1000);
        }
    }
    assert_true(s >= 0);
    assert_int_equal(sockopt(s, IPPROTO_TCP, TCP_NODELAY), 1);
    close(s);
    close(c);
    close(l);
}

static void test_port_in_use(void **state)
{
    struct sockaddr_in sin = v4("127.0.0.1", 0);
    char err[256], text[64], expect[128];
    int a, b;

    (void)state;
    a = rly_listen((struct sockaddr *)&sin, sizeof(sin), NULL, 0, 0, err, sizeof(err));
    assert_listener(a);
    sin.sin_port = htons(bound_port(a));
    snprintf(text, sizeof(text), "127.0.0.1:%u", bound_port(a));

    b = rly_listen((struct sockaddr *)&sin, sizeof(sin), text, 0, 0, err, sizeof(err));
    assert_int_equal(b, -1);
    assert_int_equal(errno, EADDRINUSE);
    snprintf(expect, sizeof(expect), "cannot listen on %s: %s", text, strerror(EADDRINUSE));
    assert_string_equal(err, expect);
    /* without a text, the address is written out */
    b = rly_listen((struct sockaddr *)&sin, sizeof(sin), NULL, RLY_LISTEN_REUSEPORT, 0, err, sizeof(err));
    assert_int_equal(b, -1);
    assert_string_equal(err, expect);
    /* a small err buffer is cut, never overrun */
    {
        char small[12];
        memset(small, '#', sizeof(small));
        assert_int_equal(rly_listen((struct sockaddr *)&sin, sizeof(sin), text, 0, 0, small, 8), -1);
        assert_string_equal(small, "cannot ");
        assert_int_equal(small[8], '#');
    }
    close(a);

    if (have_ipv6()) {
        struct sockaddr_in6 sin6 = v6("::1", 0);
        a = rly_listen((struct sockaddr *)&sin6, sizeof(sin6), NULL, 0, 0, err, sizeof(err));
        assert_listener(a);
        sin6.sin6_port = htons(bound_port(a));
        assert_int_equal(rly_listen((struct sockaddr *)&sin6, sizeof(sin6), NULL, 0, 0, err, sizeof(err)), -1);
        snprintf(expect, sizeof(expect), "cannot listen on [::1]:%u: %s", bound_port(a), strerror(EADDRINUSE));
        assert_string_equal(err, expect);
        close(a);
    }
}

static void test_bad_family(void **state)
{
    struct sockaddr_un sun = {.sun_family = AF_UNIX};
    char err[256];

    (void)state;
    assert_int_equal(rly_listen((struct sockaddr *)&sun, sizeof(sun), "unix", 0, 0, err, sizeof(err)), -1);
    assert_int_equal(errno, EAFNOSUPPORT);
    assert_non_null(strstr(err, "cannot listen on unix: "));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4),       cmocka_unit_test(test_ipv6),    cmocka_unit_test(test_ipv6_wildcard_v6only),
        cmocka_unit_test(test_reuseport),  cmocka_unit_test(test_nodelay), cmocka_unit_test(test_port_in_use),
        cmocka_unit_test(test_bad_family),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

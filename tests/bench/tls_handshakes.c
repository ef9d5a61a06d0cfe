/*
 * tls_handshakes.c: TLS handshakes per second against a relay on loopback, and the relay's CPU per handshake (utime +
 * stime of --pid from /proc/<pid>/stat, before and after), one connection at a time, no HTTP: connect, handshake,
 * close_notify, close. Modes:
 *   full     every handshake full (the server still makes and sends its tickets)
 *   resumed  every handshake offers one TLS 1.3 session taken once at the start (the relay keeps nothing: a ticket
 *            resumes as often as it is offered while its key is current)
 *   pair     a flow's start page and callback: a full handshake, its tickets read, then a resumed one with them; rates
 *            and CPU per pair
 *   fullpair the same two visits without resumption: two full handshakes
 * Prints: RESULT tls_handshakes mode=M tls=1.3|1.2 n=N secs=S per_sec=R resumed=K relay_cpu_us_per=C
 * (per handshake, or per pair in the pair modes). Loopback only, no certificate checks.
 *   tls_handshakes --port P --pid PID [--n 2000] [--mode full|resumed|pair|fullpair] [--tls1_2]
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

static int port;
static SSL_CTX *ctx;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* utime + stime of pid in clock ticks, or -1 */
static long long cpu_ticks(long pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
    FILE *fp = fopen(path, "r");
    if (fp == NULL)
        return -1;
    size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
    fclose(fp);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (p == NULL)
        return -1;
    /* after ")": state is field 3; utime and stime are fields 14 and 15 */
    long long utime = -1, stime = -1;
    int field = 2;
    for (char *tok = p + 1; *tok != '\0' && field < 15;) {
        while (*tok == ' ')
            ++tok;
        ++field;
        if (field == 14)
            utime = strtoll(tok, NULL, 10);
        else if (field == 15)
            stime = strtoll(tok, NULL, 10);
        while (*tok != ' ' && *tok != '\0')
            ++tok;
    }
    return utime < 0 || stime < 0 ? -1 : utime + stime;
}

/* one handshake, offering sess (may be NULL); wait_ticket: reads until the server's ticket arrived. Returns the
 * connection's session (caller frees) or NULL on failure; *reused whether it resumed. */
static SSL_SESSION *handshake(SSL_SESSION *sess, int wait_ticket, int *reused)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((unsigned short)port)};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    SSL_SESSION *got = NULL;
    SSL *ssl = NULL;
    if (fd < 0)
        return NULL;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 || (ssl = SSL_new(ctx)) == NULL)
        goto Exit;
    SSL_set_fd(ssl, fd);
    SSL_set_tlsext_host_name(ssl, "localhost");
    if (sess != NULL)
        SSL_set_session(ssl, sess);
    if (SSL_connect(ssl) != 1)
        goto Exit;
    *reused = SSL_session_reused(ssl);
    if (wait_ticket) {
        /* TLS 1.3 tickets follow the handshake: read (non-blocking) until the session has one, 2 s at most */
        struct pollfd pfd = {fd, POLLIN, 0};
        fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
        for (double end = now() + 2; now() < end;) {
            SSL_SESSION *s = SSL_get0_session(ssl);
            if (s != NULL && SSL_SESSION_has_ticket(s) && SSL_SESSION_is_resumable(s))
                break;
            if (poll(&pfd, 1, 100) == 1) {
                char byte;
                (void)SSL_read(ssl, &byte, 1); /* processes the ticket records, then wants more */
            }
        }
    }
    got = SSL_get1_session(ssl);
    SSL_shutdown(ssl);
Exit:
    SSL_free(ssl);
    close(fd);
    return got;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {{"port", required_argument, NULL, 'p'}, {"pid", required_argument, NULL, 'P'},
                                             {"n", required_argument, NULL, 'n'},    {"mode", required_argument, NULL, 'm'},
                                             {"tls1_2", no_argument, NULL, '2'},     {NULL, 0, NULL, 0}};
    long pid = 0, n = 2000;
    const char *mode = "full";
    int tls12 = 0, c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'p':
            port = (int)strtol(optarg, NULL, 10);
            break;
        case 'P':
            pid = strtol(optarg, NULL, 10);
            break;
        case 'n':
            n = strtol(optarg, NULL, 10);
            break;
        case 'm':
            mode = optarg;
            break;
        case '2':
            tls12 = 1;
            break;
        default:
            fprintf(stderr, "usage: tls_handshakes --port P --pid PID [--n N] [--mode full|resumed|pair|fullpair] [--tls1_2]\n");
            return 2;
        }
    }
    int full = strcmp(mode, "full") == 0, resumed = strcmp(mode, "resumed") == 0, pair = strcmp(mode, "pair") == 0,
        fullpair = strcmp(mode, "fullpair") == 0;
    if (port <= 0 || pid <= 0 || n <= 0 || !(full || resumed || pair || fullpair)) {
        fprintf(stderr, "tls_handshakes: --port, --pid and a known --mode are needed\n");
        return 2;
    }
    ctx = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(ctx, tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_CTX_set_max_proto_version(ctx, tls12 ? TLS1_2_VERSION : TLS1_3_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);

    SSL_SESSION *base = NULL;
    int reused = 0;
    if (resumed && ((base = handshake(NULL, 1, &reused)) == NULL || !SSL_SESSION_has_ticket(base))) {
        fprintf(stderr, "tls_handshakes: no ticket from the server\n");
        return 1;
    }
    long nresumed = 0, errors = 0;
    long long cpu0 = cpu_ticks(pid);
    double t0 = now();
    for (long i = 0; i != n; ++i) {
        SSL_SESSION *s;
        if (full || resumed) {
            s = handshake(base, 0, &reused);
            nresumed += s != NULL && reused;
            errors += s == NULL;
            SSL_SESSION_free(s);
        } else {
            SSL_SESSION *first = handshake(NULL, pair, &reused);
            errors += first == NULL;
            s = handshake(pair ? first : NULL, 0, &reused);
            nresumed += s != NULL && reused;
            errors += s == NULL;
            SSL_SESSION_free(s);
            SSL_SESSION_free(first);
        }
    }
    double secs = now() - t0;
    long long cpu1 = cpu_ticks(pid);
    double us = cpu0 < 0 || cpu1 < 0 ? -1 : (double)(cpu1 - cpu0) * 1e6 / (double)sysconf(_SC_CLK_TCK) / (double)n;
    printf("RESULT tls_handshakes mode=%s tls=%s n=%ld secs=%.2f per_sec=%.0f resumed=%ld errors=%ld relay_cpu_us_per=%.0f\n", mode,
           tls12 ? "1.2" : "1.3", n, secs, (double)n / secs, nresumed, errors, us);
    SSL_SESSION_free(base);
    SSL_CTX_free(ctx);
    return errors != 0;
}

/* raw.h: raw client connections for the integration tests: a chosen loopback source address, bytes before TLS (a PROXY
 * header), TLS without HTTP library, HTTP/1.1 requests written by hand */
#ifndef RLY_RAW_H
#define RLY_RAW_H

#include <stddef.h>
#include <sys/types.h>
#include <openssl/ssl.h>

typedef struct st_rly_raw_t {
    int fd;
    SSL *ssl; /* NULL: plain TCP */
} rly_raw_t;

/*
 * Connects to 127.0.0.1:port from the loopback address src ("127.0.0.2"; NULL: the kernel's choice), sends pre (pre_len
 * bytes, e.g. a PROXY header; NULL: nothing), then, when tls, does a TLS handshake (SNI localhost, ALPN http/1.1, no
 * certificate check) within timeout_ms. 0, or -1 (c closed).
 */
int rly_raw_open(rly_raw_t *c, unsigned short port, const char *src, const void *pre, size_t pre_len, int tls, long timeout_ms);
/* only the TCP connection (nonblocking connect completed or queued by the kernel): 0 / -1 */
int rly_raw_connect(rly_raw_t *c, unsigned short port, const char *src);
/* the TLS handshake on a connected c, within timeout_ms: 0 / -1 (c stays open either way) */
int rly_raw_handshake(rly_raw_t *c, long timeout_ms);
/* writes all of buf: 0 / -1 */
int rly_raw_write(rly_raw_t *c, const void *buf, size_t len);
/*
 * Reads into buf (cap bytes, NUL-terminated) until the peer closes, cap is full, or timeout_ms passes with nothing new
 * (or, when until is non-NULL, until it appears in what was read). Returns the bytes read; *closed (if non-NULL) is 1
 * when the peer closed the connection (EOF or reset).
 */
size_t rly_raw_read(rly_raw_t *c, char *buf, size_t cap, long timeout_ms, const char *until, int *closed);
void rly_raw_close(rly_raw_t *c);
/* the status of the first HTTP/1.1 response in buf ("HTTP/1.1 429 ..."), or 0 */
int rly_raw_status(const char *buf);
/* GET path with Host: localhost and Connection: close (plus extra, "Name: value\r\n" lines, or NULL) on a new
 * connection opened as rly_raw_open does; the response status, or 0 (no response) */
int rly_raw_get(unsigned short port, const char *src, const void *pre, size_t pre_len, int tls, const char *path,
                const char *extra);
/* the CPU time (user + system, seconds) the process has used, from /proc/<pid>/stat; -1 if unknown */
double rly_proc_cpu(pid_t pid);

#endif

/* config.h: the relay's configuration: one option table, flags, AUTHRELAY_* environment twins, a JSON file, checks */
#ifndef RELAY_CONFIG_H
#define RELAY_CONFIG_H

#include <stdio.h>
#include <sys/socket.h>
#include "log.h"

#define RELAY_ALLOW_AS_MAX 64
#define RELAY_ALLOW_CLIENT_ID_MAX 64
#define RELAY_CLIENT_ID_MAX 255
#define RELAY_TRUSTED_PROXY_MAX 64

typedef struct st_relay_addr_t {
    char text[280]; /* as given, e.g. "127.0.0.1:8443" or "[::1]:8443" */
    struct sockaddr_storage ss;
    socklen_t len;
} relay_addr_t;

typedef struct st_relay_config_t {
    int dev;
    char *config_file;
    relay_addr_t listen;       /* default 0.0.0.0:8443; --dev: 127.0.0.1:8443 */
    int plain;                 /* public listener without TLS */
    char *tls_cert, *tls_key;  /* both or neither; required unless --plain or --dev */
    relay_addr_t admin_listen; /* default 127.0.0.1:9090 */
    char *public_url; /* no trailing '/'; default https://<listen> (http:// with --plain; --dev: https://localhost:<port>) */
    char *redis;      /* NULL: the embedded memory store */
    char *redis_sentinel;
    char *redis_master;
    char *redis_password_file;
    char *redis_username;               /* an ACL user; overrides the URL's */
    char *keys;                         /* key file; NULL only with --dev (ephemeral keys) */
    char *allow_as[RELAY_ALLOW_AS_MAX]; /* lower-cased hosts */
    size_t allow_as_count;
    char *allow_client_id[RELAY_ALLOW_CLIENT_ID_MAX]; /* 1.1: OAuth client ids served, as written; none: any */
    size_t allow_client_id_count;
    int allow_unbound;                            /* also accept version-1 sessions (no authorize_params) */
    unsigned session_ttl_max;                     /* default 600, 60..86400 */
    unsigned wait_max;                            /* default 30, 0..300 */
    unsigned threads;                             /* default: number of CPUs, 1..256 */
    unsigned shutdown_grace;                      /* default 10, 0..3600 */
    unsigned rate_limit;                          /* per client address per minute per replica; default 600; 0 = off */
    unsigned sessions_max;                        /* live sessions across replicas; default 100000 */
    unsigned max_connections;                     /* public connections per process; 0 (default): derived from RLIMIT_NOFILE */
    int proxy_protocol;                           /* the public listener expects a PROXY protocol v1/v2 header first */
    char *trusted_proxy[RELAY_TRUSTED_PROXY_MAX]; /* address blocks whose Forwarded / X-Forwarded-For is believed */
    size_t trusted_proxy_count;
    rly_log_level_t log_level; /* default info */
} relay_config_t;

/*
 * Fills cfg from, in increasing precedence: defaults (changed by --dev), the JSON config file (--config or
 * AUTHRELAY_CONFIG; keys are the long option names without "--", e.g. {"listen": "...", "allow-as": ["a", "b"],
 * "wait-max": 30, "plain": true}), AUTHRELAY_* environment variables (--wait-max is AUTHRELAY_WAIT_MAX; booleans take
 * 1/0/true/false; AUTHRELAY_ALLOW_AS is comma-separated), then flags (argv[0] is the subcommand name). Then checks the
 * whole configuration (address syntax, bounds, files readable, cert/key pairs, public URL shape, redis URL shape...).
 * Every problem is written to err as one line "authrelay: <what>" and all are reported, not just the first.
 * Returns RELAY_CONFIG_OK, or why not (below); with --help prints usage to stdout and returns RELAY_CONFIG_HELP. The
 * values are the exit statuses of check-config (HELP: 0).
 * cfg is overwritten, not freed first. After RELAY_CONFIG_OK the caller owns its strings and frees them with relay_config_free;
 * after any other return cfg holds nothing (relay_config_free on it is harmless). An empty AUTHRELAY_* variable counts as unset.
 * argv is borrowed.
 */
typedef enum en_relay_config_status_t {
    RELAY_CONFIG_OK = 0,      /* cfg is filled */
    RELAY_CONFIG_INVALID = 1, /* the configuration is invalid (each problem reported): exit status 1 */
    RELAY_CONFIG_USAGE = 2,   /* an unknown flag, a missing value: exit status 2 */
    RELAY_CONFIG_HELP = 3,    /* --help was printed: exit status 0 */
} relay_config_status_t;
relay_config_status_t relay_config_load(relay_config_t *cfg, int argc, char **argv, FILE *err);
/*
 * The same from the text of a JSON config file alone, text[0..len) (borrowed, need not be NUL-terminated; error lines
 * name it "(config text)"): defaults, then the file's keys, then the checks; no environment, no flags. Returns
 * RELAY_CONFIG_OK or RELAY_CONFIG_INVALID, with cfg and err as relay_config_load leaves them. For tests and fuzzing.
 */
relay_config_status_t relay_config_load_json(relay_config_t *cfg, const char *text, size_t len, FILE *err);
/* prints the option reference (used by --help of serve and check-config) */
void relay_config_usage(FILE *out, const char *subcommand);
void relay_config_free(relay_config_t *cfg);
/* 1 if the address is a loopback one: 127.0.0.0/8, ::1 or IPv4-mapped 127.0.0.0/8 (rly_sockaddr_is_loopback of addr.h) */
int relay_addr_is_loopback(const relay_addr_t *addr);

#endif

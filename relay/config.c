/* config.c: one option table drives flags, AUTHRELAY_* environment twins, the JSON config file, defaults and checks */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <json-c/json.h>
#include <libpsl.h>
#include "rly.h"
#include "addr.h"
#include "config.h"

#define ENV_PREFIX "AUTHRELAY_"
#define CONFIG_FILE_MAX 65536 /* bytes of the JSON config file */
#define VALUE_MAX 4096        /* bytes of any string value (paths, URLs) */
#define PUBLIC_URL_MAX 1024
#define SENTINELS_MAX 16
#define REDIS_MASTER_MAX 128
#define SHOWN_MAX 80 /* a value echoed in an error line, quoted and escaped */
#define STR_(x) #x
#define STR(x) STR_(x)

enum en_type_t {
    T_HELP,     /* the --help action */
    T_BOOL,     /* int; bare flag, --name=true|false|1|0, env 1|0|true|false, JSON true|false */
    T_STRING,   /* char *, malloc'ed */
    T_UINT,     /* unsigned within [min, max] */
    T_ADDR,     /* relay_addr_t */
    T_LIST,     /* char *[RELAY_ALLOW_AS_MAX] and a size_t count; repeatable flag, comma-separated env, JSON array */
    T_LOGLEVEL, /* rly_log_level_t */
};

enum {
    F_NOENV = 1,  /* no AUTHRELAY_* twin */
    F_NOFILE = 2, /* not a key of the JSON file */
    F_CPUS = 4,   /* default: the number of online CPUs, clamped to [min, max] */
    F_IDENT = 8,  /* T_LIST of identifiers taken as written (printable ASCII, no blank or comma), not host names */
    F_CIDR = 16,  /* T_LIST of address blocks (rly_cidr_parse), not host names */
};

/* where a value came from, in increasing precedence */
enum en_layer_t { L_DEFAULT, L_FILE, L_ENV, L_FLAG };

struct st_option_t {
    const char *name; /* long flag without "--"; also the JSON key; the env twin is AUTHRELAY_ + NAME with '-' -> '_' */
    enum en_type_t type;
    unsigned flags;
    size_t off;       /* the field in relay_config_t */
    size_t count_off; /* T_LIST: its size_t count */
    const char *metavar;
    const char *def;      /* default, parsed like any given value; NULL: none */
    const char *dev_def;  /* default under --dev; NULL: same as def */
    const char *def_text; /* shown instead of def (computed defaults) */
    const char *dev_text; /* shown as the --dev default (when it differs and is computed) */
    unsigned long min, max;
    const char *(*check)(char *value); /* T_STRING: NULL or the reason it is wrong; may shorten value in place */
    const char *help;                  /* lines separated by '\n' */
};

static const char *check_public_url(char *value);
static const char *check_redis(char *value);
static const char *check_sentinels(char *value);
static const char *check_redis_master(char *value);
static const char *check_redis_username(char *value);

#define FIELD(f) offsetof(relay_config_t, f)

/* THE option table: flags, environment, JSON keys, defaults, bounds, --help and docs/configuration.md follow it */
static const struct st_option_t options[] = {
    {.name = "help", .type = T_HELP, .flags = F_NOENV | F_NOFILE, .help = "print this help and exit"},
    {.name = "dev",
     .type = T_BOOL,
     .off = FIELD(dev),
     .def = "false",
     .help = "zero-setup run: self-signed localhost certificate, ephemeral keys, memory store,\n"
             "http loopback authorization servers allowed; changes defaults only"},
    {.name = "config",
     .type = T_STRING,
     .flags = F_NOFILE,
     .off = FIELD(config_file),
     .metavar = "FILE",
     .help = "JSON config file; its keys are the long option names (\"wait-max\": 30)"},
    {.name = "listen",
     .type = T_ADDR,
     .off = FIELD(listen),
     .metavar = "ADDR:PORT",
     .def = "0.0.0.0:8443",
     .dev_def = "127.0.0.1:8443",
     .help = "public listener: a.b.c.d:port, [v6]:port or localhost:port"},
    {.name = "plain",
     .type = T_BOOL,
     .off = FIELD(plain),
     .def = "false",
     .help = "public listener without TLS (behind a TLS-terminating proxy)"},
    {.name = "tls-cert",
     .type = T_STRING,
     .off = FIELD(tls_cert),
     .metavar = "FILE",
     .dev_text = "self-signed, ephemeral",
     .help = "certificate chain (PEM) of the public listener, with --tls-key;\n"
             "required unless --plain or --dev"},
    {.name = "tls-key",
     .type = T_STRING,
     .off = FIELD(tls_key),
     .metavar = "FILE",
     .dev_text = "self-signed, ephemeral",
     .help = "private key (PEM) of --tls-cert"},
    {.name = "admin-listen",
     .type = T_ADDR,
     .off = FIELD(admin_listen),
     .metavar = "ADDR:PORT",
     .def = "127.0.0.1:9090",
     .help = "admin listener, plain HTTP: /healthz, /readyz, /metrics"},
    {.name = "public-url",
     .type = T_STRING,
     .off = FIELD(public_url),
     .metavar = "URL",
     .def_text = "https://<listen>",
     .dev_text = "https://localhost:<port>",
     .check = check_public_url,
     .help = "base of redirect_uri and poll_url: https://host[:port][/path], no query;\n"
             "http only with --plain or a loopback host; required when --listen\n"
             "is a wildcard (0.0.0.0, [::]) unless --dev"},
    {.name = "redis",
     .type = T_STRING,
     .off = FIELD(redis),
     .metavar = "URL",
     .def_text = "memory store",
     .check = check_redis,
     .help = "redis://[:password@]host:port[/db] or unix:///path;\n"
             "none: the embedded memory store (one process)"},
    {.name = "redis-sentinel",
     .type = T_STRING,
     .off = FIELD(redis_sentinel),
     .metavar = "H:P,...",
     .check = check_sentinels,
     .help = "Sentinel addresses, comma-separated (with --redis-master)"},
    {.name = "redis-master",
     .type = T_STRING,
     .off = FIELD(redis_master),
     .metavar = "NAME",
     .check = check_redis_master,
     .help = "name of the master the Sentinels watch (with --redis-sentinel)"},
    {.name = "redis-username",
     .type = T_STRING,
     .off = FIELD(redis_username),
     .metavar = "NAME",
     .check = check_redis_username,
     .help = "Redis ACL user (AUTH user password; managed Redis often needs one);\n"
             "overrides the user of --redis"},
    {.name = "redis-password-file",
     .type = T_STRING,
     .off = FIELD(redis_password_file),
     .metavar = "FILE",
     .help = "file holding the Redis password (keeps it off the command line)"},
    {.name = "keys",
     .type = T_STRING,
     .off = FIELD(keys),
     .metavar = "FILE",
     .dev_text = "ephemeral keys",
     .help = "key file written by `authrelay keygen FILE`; required unless --dev"},
    {.name = "allow-as",
     .type = T_LIST,
     .off = FIELD(allow_as),
     .count_off = FIELD(allow_as_count),
     .metavar = "HOST|*.SUFFIX",
     .def_text = "any https AS",
     .max = RELAY_ALLOW_AS_MAX,
     .help = "allow-listed authorization server: a host, or *.suffix for every host under\n"
             "it (never the suffix itself); the entry that matched is what the log says;\n"
             "repeatable, or comma-separated; at most " STR(RELAY_ALLOW_AS_MAX) ", lower-cased"},
    {.name = "allow-client-id",
     .type = T_LIST,
     .flags = F_IDENT,
     .off = FIELD(allow_client_id),
     .count_off = FIELD(allow_client_id_count),
     .metavar = "ID",
     .def_text = "any client",
     .max = RELAY_ALLOW_CLIENT_ID_MAX,
     .help = "(1.1) OAuth client id the relay serves (authorize_params.client_id);\n"
             "repeatable, or comma-separated; at most " STR(RELAY_ALLOW_CLIENT_ID_MAX) ", as written"},
    {.name = "allow-unbound",
     .type = T_BOOL,
     .off = FIELD(allow_unbound),
     .def = "false",
     .help = "also accept version-1 sessions (no authorize_params, no confirmation page):\n"
             "they are open to consent phishing; only while instances move to 1.1"},
    {.name = "session-ttl-max",
     .type = T_UINT,
     .off = FIELD(session_ttl_max),
     .metavar = "SEC",
     .def = STR(RLY_TTL_DEFAULT),
     .min = RLY_TTL_MIN,
     .max = 86400,
     .help = "longest session lifetime an instance may ask for"},
    {.name = "wait-max",
     .type = T_UINT,
     .off = FIELD(wait_max),
     .metavar = "SEC",
     .def = "30",
     .min = 0,
     .max = 300,
     .help = "longest pickup long-poll (Prefer: wait=N)"},
    {.name = "threads",
     .type = T_UINT,
     .flags = F_CPUS,
     .off = FIELD(threads),
     .metavar = "N",
     .def_text = "number of CPUs",
     .min = 1,
     .max = 256,
     .help = "worker threads, each with its own event loop"},
    {.name = "shutdown-grace",
     .type = T_UINT,
     .off = FIELD(shutdown_grace),
     .metavar = "SEC",
     .def = "10",
     .min = 0,
     .max = 3600,
     .help = "on SIGTERM, time given to requests in flight"},
    {.name = "rate-limit",
     .type = T_UINT,
     .off = FIELD(rate_limit),
     .metavar = "PER_MIN",
     .def = "600",
     .min = 0,
     .max = 1000000,
     .help = "session creations and callbacks per client address per minute,\n"
             "per replica; 0 = off"},
    {.name = "sessions-max",
     .type = T_UINT,
     .off = FIELD(sessions_max),
     .metavar = "N",
     .def = "100000",
     .min = 1,
     .max = 100000000,
     .help = "live sessions across all replicas (counted in the store); beyond it,\n"
             "POST /v1/sessions answers 503 with Retry-After"},
    {.name = "max-connections",
     .type = T_UINT,
     .off = FIELD(max_connections),
     .metavar = "N",
     .def = "0",
     .def_text = "from RLIMIT_NOFILE",
     .min = 0,
     .max = 1000000,
     .help = "open public connections per process; at the cap, accepting pauses until\n"
             "one closes; 0: the descriptor limit less headroom for Redis and admin"},
    {.name = "proxy-protocol",
     .type = T_BOOL,
     .off = FIELD(proxy_protocol),
     .def = "false",
     .help = "the public listener expects a PROXY protocol header (v1 or v2) on every\n"
             "connection, and takes the client address from it (HAProxy send-proxy-v2)"},
    {.name = "trusted-proxy",
     .type = T_LIST,
     .flags = F_CIDR,
     .off = FIELD(trusted_proxy),
     .count_off = FIELD(trusted_proxy_count),
     .metavar = "CIDR",
     .def_text = "none",
     .max = RELAY_TRUSTED_PROXY_MAX,
     .help = "peers whose Forwarded / X-Forwarded-For header names the client (for the\n"
             "rate limit); from any other peer these headers are ignored; repeatable,\n"
             "or comma-separated; at most " STR(RELAY_TRUSTED_PROXY_MAX)},
    {.name = "log-level",
     .type = T_LOGLEVEL,
     .off = FIELD(log_level),
     .metavar = "LEVEL",
     .def = "info",
     .help = "debug, info, warn or error"},
};

#define NOPTIONS (sizeof(options) / sizeof(options[0]))

/* one occurrence of a flag on the command line; value is borrowed from argv, NULL for a bare boolean */
struct st_flag_t {
    size_t opt;
    const char *value;
};

struct st_loader_t {
    relay_config_t *cfg;
    FILE *err;
    const char *file;              /* the JSON config file, for error lines */
    unsigned errors;               /* lines written to err */
    unsigned char given[NOPTIONS]; /* set by the file, the environment or a flag */
    unsigned char layer[NOPTIONS]; /* the layer that last set it (lists: replaced, not merged, by a higher layer) */
    int list_full_reported;
};

static void env_name(const struct st_option_t *o, char *buf, size_t cap)
{
    size_t n = sizeof(ENV_PREFIX) - 1, i;

    memcpy(buf, ENV_PREFIX, n);
    for (i = 0; o->name[i] != '\0' && n + 1 < cap; ++i)
        buf[n++] = o->name[i] == '-' ? '_' : (char)toupper((unsigned char)o->name[i]);
    buf[n] = '\0';
}

static int find_option(const char *name, size_t len)
{
    size_t i;

    for (i = 0; i != NOPTIONS; ++i)
        if (strlen(options[i].name) == len && memcmp(options[i].name, name, len) == 0)
            return (int)i;
    return -1;
}

/* s quoted, bytes outside printable ASCII as \xNN, cut at about SHOWN_MAX; for values that are no secret */
static const char *shown(char *buf, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0, i;

    buf[n++] = '"';
    for (i = 0; i != len && n + 8 < SHOWN_MAX; ++i) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
            buf[n++] = (char)c;
        } else {
            buf[n++] = '\\';
            buf[n++] = 'x';
            buf[n++] = hex[c >> 4];
            buf[n++] = hex[c & 15];
        }
    }
    buf[n++] = '"';
    if (i != len) {
        memcpy(buf + n, "...", 3);
        n += 3;
    }
    buf[n] = '\0';
    return buf;
}

__attribute__((format(printf, 2, 3))) static void report(struct st_loader_t *l, const char *fmt, ...)
{
    va_list ap;

    fputs("authrelay: ", l->err);
    va_start(ap, fmt);
    vfprintf(l->err, fmt, ap);
    va_end(ap);
    fputc('\n', l->err);
    ++l->errors;
}

/* "authrelay: <origin>: <what>" where origin names the option the way it was given */
__attribute__((format(printf, 4, 5))) static void report_opt(struct st_loader_t *l, size_t i, enum en_layer_t layer,
                                                             const char *fmt, ...)
{
    va_list ap;
    char env[64];

    fputs("authrelay: ", l->err);
    switch (layer) {
    case L_FILE:
        fprintf(l->err, "%s: %s: ", l->file, options[i].name);
        break;
    case L_ENV:
        env_name(&options[i], env, sizeof(env));
        fprintf(l->err, "%s: ", env);
        break;
    default:
        fprintf(l->err, "--%s: ", options[i].name);
        break;
    }
    va_start(ap, fmt);
    vfprintf(l->err, fmt, ap);
    va_end(ap);
    fputc('\n', l->err);
    ++l->errors;
}

static int parse_bool(const char *s, int *out)
{
    if (strcmp(s, "1") == 0 || strcmp(s, "true") == 0) {
        *out = 1;
    } else if (strcmp(s, "0") == 0 || strcmp(s, "false") == 0) {
        *out = 0;
    } else {
        return -1;
    }
    return 0;
}

/* a host alone, without port: a name, an IPv4 address or an IPv6 address in brackets */
static int host_ok(const char *s, size_t len)
{
    rly_hostport_t hp;
    const char *why;

    return rly_hostport_parse(s, len, 0, &hp, &why) == 0 && hp.port == 0 && hp.host_len + (hp.is_ipv6 ? 2 : 0) == len;
}

/* "a.b.c.d:port", "[v6]:port" or "localhost:port" (127.0.0.1; no other name is resolved); NULL or why not */
static const char *parse_addr(const char *s, relay_addr_t *addr)
{
    size_t len = strlen(s);
    const char *why;

    memset(addr, 0, sizeof(*addr));
    if (len >= sizeof(addr->text))
        return "too long";
    if (rly_sockaddr_parse(s, len, &addr->ss, &addr->len, &why) != 0)
        return why;
    memcpy(addr->text, s, len + 1);
    return NULL;
}

int relay_addr_is_loopback(const relay_addr_t *addr)
{
    return rly_sockaddr_is_loopback((const struct sockaddr *)&addr->ss);
}

static int addr_is_wildcard(const relay_addr_t *addr)
{
    if (addr->ss.ss_family == AF_INET)
        return ((const struct sockaddr_in *)&addr->ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (addr->ss.ss_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)&addr->ss)->sin6_addr);
    return 0;
}

static unsigned addr_port(const relay_addr_t *addr)
{
    if (addr->ss.ss_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&addr->ss)->sin_port);
    if (addr->ss.ss_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&addr->ss)->sin6_port);
    return 0;
}

/* 1 if binding both would clash: same port and the same address, or either one a wildcard */
static int addr_overlap(const relay_addr_t *a, const relay_addr_t *b)
{
    if (addr_port(a) != addr_port(b))
        return 0;
    if (addr_is_wildcard(a) || addr_is_wildcard(b))
        return 1;
    if (a->ss.ss_family != b->ss.ss_family)
        return 0;
    if (a->ss.ss_family == AF_INET)
        return ((const struct sockaddr_in *)&a->ss)->sin_addr.s_addr == ((const struct sockaddr_in *)&b->ss)->sin_addr.s_addr;
    return memcmp(&((const struct sockaddr_in6 *)&a->ss)->sin6_addr, &((const struct sockaddr_in6 *)&b->ss)->sin6_addr,
                  sizeof(struct in6_addr)) == 0;
}

struct st_http_url_t {
    int https;
    rly_hostport_t hp;
    size_t path_off; /* offset of the path ('/' or the end) */
};

/* absolute http(s) URL: scheme, host[:port], optional path; no userinfo, query or fragment; NULL or why not */
static const char *parse_http_url(const char *s, struct st_http_url_t *u)
{
    const char *p, *auth_end, *why;

    if (strncmp(s, "https://", 8) == 0) {
        u->https = 1;
        p = s + 8;
    } else if (strncmp(s, "http://", 7) == 0) {
        u->https = 0;
        p = s + 7;
    } else {
        return "must be an absolute https:// URL";
    }
    if (strpbrk(s, "?#") != NULL)
        return "must have no query and no fragment";
    auth_end = p + strcspn(p, "/");
    if (memchr(p, '@', (size_t)(auth_end - p)) != NULL)
        return "must have no user name or password";
    if (rly_hostport_parse(p, (size_t)(auth_end - p), 0, &u->hp, &why) != 0)
        return why;
    for (p = auth_end; *p != '\0'; ++p) {
        unsigned char c = (unsigned char)*p;
        if (c == '%') {
            if (!isxdigit((unsigned char)p[1]) || !isxdigit((unsigned char)p[2]))
                return "has a bad %-escape in its path";
            p += 2;
        } else if (!(c < 0x80 && (isalnum(c) || strchr("-._~!$&'()*+,;=:@/", c) != NULL))) {
            return "has a character in its path that must be %-escaped";
        }
    }
    u->path_off = (size_t)(auth_end - s);
    return NULL;
}

static const char *check_public_url(char *value)
{
    struct st_http_url_t u;
    size_t len = strlen(value);
    const char *why;

    if (len > PUBLIC_URL_MAX)
        return "too long (at most " STR(PUBLIC_URL_MAX) " bytes)";
    if ((why = parse_http_url(value, &u)) != NULL)
        return why;
    while (len > u.path_off && value[len - 1] == '/')
        value[--len] = '\0';
    return NULL;
}

static const char *check_redis(char *value)
{
    rly_redis_url_t u;
    const char *why;

    if (rly_redis_url_parse(value, strlen(value), &u, &why) != 0)
        return why;
    return NULL; /* an ACL user name is taken (redis://user:password@host:port) */
}

static const char *check_redis_username(char *value)
{
    size_t n = strlen(value);
    if (n > REDIS_MASTER_MAX)
        return "too long (at most " STR(REDIS_MASTER_MAX) " bytes)";
    for (const char *p = value; *p != '\0'; ++p)
        if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
            return "must be printable ASCII without blanks";
    return NULL;
}

static const char *check_sentinels(char *value)
{
    rly_hostport_t hp;
    size_t len = strlen(value), pos = 0, n = 0;
    const char *why;
    int r;

    while ((r = rly_hostport_list_next(value, len, &pos, &hp, &why)) == 1)
        if (++n > SENTINELS_MAX)
            return "has too many addresses (at most " STR(SENTINELS_MAX) ")";
    return r < 0 ? why : NULL;
}

static const char *check_redis_master(char *value)
{
    const char *p;

    if (strlen(value) > REDIS_MASTER_MAX)
        return "too long (at most " STR(REDIS_MASTER_MAX) " bytes)";
    for (p = value; *p != '\0'; ++p)
        if (!(((unsigned char)*p < 0x80 && isalnum((unsigned char)*p)) || strchr("._:-", *p) != NULL))
            return "may hold only letters, digits, '.', '_', ':' and '-'";
    return NULL;
}

static void list_clear(char **list, size_t *count)
{
    size_t i;

    for (i = 0; i != *count; ++i) {
        free(list[i]);
        list[i] = NULL;
    }
    *count = 0;
}

static void *field_of(struct st_loader_t *l, size_t i)
{
    return (char *)l->cfg + options[i].off;
}

/* the count of list option i */
static size_t *count_of(struct st_loader_t *l, size_t i)
{
    return (void *)((char *)l->cfg + options[i].count_off);
}

/* called before a layer sets option i: remembers it was given and, for a list, drops what a lower layer put there */
static void mark(struct st_loader_t *l, size_t i, enum en_layer_t layer)
{
    if (options[i].type == T_LIST && l->layer[i] != layer)
        list_clear(field_of(l, i), count_of(l, i));
    l->layer[i] = (unsigned char)layer;
    if (layer != L_DEFAULT)
        l->given[i] = 1;
}

/* 1 if "*.suffix" would match more than one organisation's hosts: the suffix has one label, or is a public suffix of the
 * ICANN section of the public suffix list ("co.uk"); private-section suffixes ("my.salesforce.com") are what wildcards are
 * for */
static int wildcard_too_wide(const char *suffix, size_t len)
{
    char lc[RLY_AS_HOST_MAX + 1];
    if (memchr(suffix, '.', len) == NULL || len >= sizeof(lc))
        return 1;
    for (size_t j = 0; j != len; ++j)
        lc[j] = (char)tolower((unsigned char)suffix[j]);
    lc[len] = '\0';
    const psl_ctx_t *psl = psl_builtin();
    return psl != NULL && psl_is_public_suffix2(psl, lc, PSL_TYPE_ICANN | PSL_TYPE_NO_STAR_RULE);
}

static void list_add(struct st_loader_t *l, size_t i, const char *s, size_t len, enum en_layer_t layer)
{
    char **list = field_of(l, i), *host, sb[SHOWN_MAX];
    size_t *count = count_of(l, i), j;

    if (len == 0) {
        report_opt(l, i, layer, (options[i].flags & (F_IDENT | F_CIDR)) != 0 ? "empty value" : "empty host name");
        return;
    }
    if ((options[i].flags & F_CIDR) != 0) {
        rly_cidr_t cidr;
        const char *why;
        if (rly_cidr_parse(s, len, &cidr, &why) != 0) {
            report_opt(l, i, layer, "invalid address block %s: %s", shown(sb, s, len), why);
            return;
        }
    } else if ((options[i].flags & F_IDENT) != 0) {
        for (j = 0; j != len && s[j] > 0x20 && s[j] < 0x7f && s[j] != ','; ++j)
            ;
        if (j != len || len > RELAY_CLIENT_ID_MAX) {
            report_opt(l, i, layer, "invalid value %s: printable ASCII without blanks or commas, at most %d bytes",
                       shown(sb, s, len), RELAY_CLIENT_ID_MAX);
            return;
        }
    } else if (len > 2 && s[0] == '*' && s[1] == '.') {
        /* a wildcard entry: "*." and a host of two labels or more, never over a public suffix ("*.co.uk") */
        if (len - 2 > RLY_AS_HOST_MAX || !host_ok(s + 2, len - 2) || wildcard_too_wide(s + 2, len - 2)) {
            report_opt(
                l, i, layer,
                "invalid wildcard %s: expected *.suffix, the suffix a host name of two labels or more that is not a public suffix",
                shown(sb, s, len));
            return;
        }
    } else if (len > RLY_AS_HOST_MAX || !host_ok(s, len)) {
        report_opt(l, i, layer, "invalid host %s: expected a name, an IPv4 address or [IPv6], without port", shown(sb, s, len));
        return;
    }
    if ((host = strndup(s, len)) == NULL) {
        report_opt(l, i, layer, "out of memory");
        return;
    }
    for (j = 0; j != len && (options[i].flags & (F_IDENT | F_CIDR)) == 0; ++j)
        host[j] = (char)tolower((unsigned char)host[j]);
    for (j = 0; j != *count; ++j) {
        if (strcmp(list[j], host) == 0) {
            free(host);
            return;
        }
    }
    if (*count == options[i].max) {
        if (!l->list_full_reported)
            report_opt(l, i, layer, "more than %lu %s", options[i].max,
                       (options[i].flags & F_IDENT) != 0  ? "values"
                       : (options[i].flags & F_CIDR) != 0 ? "address blocks"
                                                          : "hosts");
        l->list_full_reported = 1;
        free(host);
        return;
    }
    list[(*count)++] = host;
}

static void set_uint(struct st_loader_t *l, size_t i, unsigned long long n, enum en_layer_t layer)
{
    if (n < options[i].min || n > options[i].max) {
        report_opt(l, i, layer, "must be between %lu and %lu", options[i].min, options[i].max);
        return;
    }
    *(unsigned *)field_of(l, i) = (unsigned)n;
}

static void set_string(struct st_loader_t *l, size_t i, const char *s, size_t len, enum en_layer_t layer)
{
    char **field = field_of(l, i), *copy;
    const char *why;

    if (len == 0) {
        report_opt(l, i, layer, "must not be empty");
        return;
    }
    if (len > VALUE_MAX) {
        report_opt(l, i, layer, "too long (at most %d bytes)", VALUE_MAX);
        return;
    }
    if (memchr(s, '\0', len) != NULL) {
        report_opt(l, i, layer, "must not contain a NUL byte");
        return;
    }
    /* a path is echoed in error lines as given: a control character would break the line (or drive the terminal) */
    for (size_t k = 0; k != len; ++k) {
        if ((unsigned char)s[k] < 0x20 || s[k] == 0x7f) {
            report_opt(l, i, layer, "must not contain a control character");
            return;
        }
    }
    if ((copy = strndup(s, len)) == NULL) {
        report_opt(l, i, layer, "out of memory");
        return;
    }
    if (options[i].check != NULL && (why = options[i].check(copy)) != NULL) {
        report_opt(l, i, layer, "%s", why);
        free(copy);
        return;
    }
    free(*field);
    *field = copy;
}

/* a value given as text: a flag, an environment variable, or a default */
static void set_text(struct st_loader_t *l, size_t i, const char *v, enum en_layer_t layer)
{
    const struct st_option_t *o = &options[i];
    char sb[SHOWN_MAX];
    const char *why;

    mark(l, i, layer);
    switch (o->type) {
    case T_HELP:
        break;
    case T_BOOL: {
        int b;
        if (parse_bool(v, &b) != 0) {
            report_opt(l, i, layer, "must be true, false, 1 or 0, not %s", shown(sb, v, strlen(v)));
        } else {
            *(int *)field_of(l, i) = b;
        }
    } break;
    case T_UINT: {
        unsigned long long n;
        if (rly_parse_uint(v, strlen(v), ULLONG_MAX, &n) != 0) {
            if (v[0] != '\0' && strspn(v, "0123456789") == strlen(v)) {
                report_opt(l, i, layer, "must be between %lu and %lu", o->min, o->max);
            } else {
                report_opt(l, i, layer, "not a whole number: %s", shown(sb, v, strlen(v)));
            }
        } else {
            set_uint(l, i, n, layer);
        }
    } break;
    case T_STRING:
        set_string(l, i, v, strlen(v), layer);
        break;
    case T_ADDR: {
        relay_addr_t addr;
        if ((why = parse_addr(v, &addr)) != NULL) {
            report_opt(l, i, layer, "%s: %s", shown(sb, v, strlen(v)), why);
        } else {
            *(relay_addr_t *)field_of(l, i) = addr;
        }
    } break;
    case T_LIST:
        for (;;) {
            size_t len = strcspn(v, ",");
            list_add(l, i, v, len, layer);
            if (v[len] == '\0')
                break;
            v += len + 1;
        }
        break;
    case T_LOGLEVEL:
        if (rly_log_level_parse(v, field_of(l, i)) != 0)
            report_opt(l, i, layer, "must be debug, info, warn or error, not %s", shown(sb, v, strlen(v)));
        break;
    }
}

static void set_json(struct st_loader_t *l, size_t i, json_object *v)
{
    const struct st_option_t *o = &options[i];

    mark(l, i, L_FILE);
    switch (o->type) {
    case T_HELP:
        break;
    case T_BOOL:
        if (!json_object_is_type(v, json_type_boolean)) {
            report_opt(l, i, L_FILE, "must be true or false");
        } else {
            *(int *)field_of(l, i) = json_object_get_boolean(v);
        }
        break;
    case T_UINT:
        if (!json_object_is_type(v, json_type_int)) {
            report_opt(l, i, L_FILE, "must be a whole number");
        } else {
            int64_t n = json_object_get_int64(v);
            if (n < 0 || n > (int64_t)o->max) {
                report_opt(l, i, L_FILE, "must be between %lu and %lu", o->min, o->max);
            } else {
                set_uint(l, i, (unsigned long long)n, L_FILE);
            }
        }
        break;
    case T_STRING:
    case T_ADDR:
    case T_LOGLEVEL:
        if (!json_object_is_type(v, json_type_string)) {
            report_opt(l, i, L_FILE, "must be a string");
        } else if (o->type == T_STRING) {
            set_string(l, i, json_object_get_string(v), (size_t)json_object_get_string_len(v), L_FILE);
        } else if (strlen(json_object_get_string(v)) != (size_t)json_object_get_string_len(v)) {
            report_opt(l, i, L_FILE, "must not contain a NUL byte");
        } else {
            set_text(l, i, json_object_get_string(v), L_FILE);
        }
        break;
    case T_LIST: {
        size_t n, j;
        if (!json_object_is_type(v, json_type_array)) {
            report_opt(l, i, L_FILE, "must be an array of strings, e.g. [\"auth.atlassian.com\"]");
            break;
        }
        n = json_object_array_length(v);
        for (j = 0; j != n; ++j) {
            json_object *e = json_object_array_get_idx(v, j);
            if (!json_object_is_type(e, json_type_string)) {
                report_opt(l, i, L_FILE, "must be an array of strings, e.g. [\"auth.atlassian.com\"]");
                break;
            }
            list_add(l, i, json_object_get_string(e), (size_t)json_object_get_string_len(e), L_FILE);
        }
    } break;
    }
}

/* parses the text of a JSON config file (named l->file in error lines; len <= CONFIG_FILE_MAX); NULL after reporting why */
static json_object *parse_json(struct st_loader_t *l, const char *buf, size_t len)
{
    const char *path = l->file;
    json_object *root = NULL;
    json_tokener *tok = NULL;
    size_t end, line = 1, col = 1, j;

    if (memchr(buf, '\0', len) != NULL) {
        report(l, "%s: invalid JSON: a NUL byte", path);
        goto Exit;
    }
    if ((tok = json_tokener_new_ex(RLY_JSON_DEPTH_MAX)) == NULL) {
        report(l, "%s: out of memory", path);
        goto Exit;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
    root = json_tokener_parse_ex(tok, buf, (int)len);
    end = json_tokener_get_parse_end(tok);
    if (root != NULL) {
        /* only blanks may follow the document */
        for (j = end; j != len && strchr(" \t\r\n", buf[j]) != NULL; ++j)
            ;
        if (j != len) {
            json_object_put(root);
            root = NULL;
            end = j;
        }
    }
    if (root == NULL) {
        enum json_tokener_error e = json_tokener_get_error(tok);
        for (j = 0; j != end && j != len; ++j) {
            if (buf[j] == '\n') {
                ++line;
                col = 1;
            } else {
                ++col;
            }
        }
        report(l, "%s: invalid JSON at line %zu, column %zu: %s", path, line, col,
               e == json_tokener_continue  ? "unexpected end of file"
               : e == json_tokener_success ? "unexpected text after the document"
                                           : json_tokener_error_desc(e));
        goto Exit;
    }
    if (!json_object_is_type(root, json_type_object)) {
        report(l, "%s: must hold one JSON object, e.g. {\"listen\": \"0.0.0.0:8443\"}", path);
        json_object_put(root);
        root = NULL;
        goto Exit;
    }
Exit:
    if (tok != NULL)
        json_tokener_free(tok);
    return root;
}

/* reads and parses the JSON config file; NULL after reporting why */
static json_object *read_json(struct st_loader_t *l, const char *path)
{
    json_object *root = NULL;
    char *buf = NULL;
    size_t len = 0;
    struct stat st;
    int fd;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) == -1) {
        report(l, "%s: %s", path, strerror(errno));
        goto Exit;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        report(l, "%s: not a regular file", path);
        goto Exit;
    }
    if (st.st_size > CONFIG_FILE_MAX) {
        report(l, "%s: too large (at most %d bytes)", path, CONFIG_FILE_MAX);
        goto Exit;
    }
    if ((buf = malloc(CONFIG_FILE_MAX + 1)) == NULL) {
        report(l, "%s: out of memory", path);
        goto Exit;
    }
    for (;;) {
        ssize_t r = read(fd, buf + len, CONFIG_FILE_MAX + 1 - len);
        if (r == -1 && errno == EINTR)
            continue;
        if (r == -1) {
            report(l, "%s: %s", path, strerror(errno));
            goto Exit;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > CONFIG_FILE_MAX) {
            report(l, "%s: too large (at most %d bytes)", path, CONFIG_FILE_MAX);
            goto Exit;
        }
    }
    root = parse_json(l, buf, len);
Exit:
    free(buf);
    if (fd != -1)
        close(fd);
    return root;
}

static void apply_json(struct st_loader_t *l, json_object *root)
{
    struct json_object_iterator it = json_object_iter_begin(root), end = json_object_iter_end(root);
    char sb[SHOWN_MAX];

    for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
        const char *key = json_object_iter_peek_name(&it);
        int i = find_option(key, strlen(key));
        if (i < 0 || (options[i].flags & F_NOFILE) != 0) {
            report(l, "%s: unknown key %s (keys are the long option names, e.g. \"wait-max\")", l->file,
                   shown(sb, key, strlen(key)));
            continue;
        }
        set_json(l, (size_t)i, json_object_iter_peek_value(&it));
    }
}

static void apply_env(struct st_loader_t *l)
{
    char name[64];
    const char *v;
    size_t i;

    for (i = 0; i != NOPTIONS; ++i) {
        if ((options[i].flags & F_NOENV) != 0)
            continue;
        env_name(&options[i], name, sizeof(name));
        if ((v = getenv(name)) != NULL && v[0] != '\0') /* empty is unset, as compose files and manifests write it */
            set_text(l, i, v, L_ENV);
    }
}

/*
 * Splits argv[1..] into flags; reports unknown flags, missing values and stray arguments (usage errors) and returns
 * how many; *help is set by --help.
 */
static unsigned parse_flags(struct st_loader_t *l, int argc, char **argv, struct st_flag_t *flags, size_t *nflags, int *help)
{
    unsigned errors = l->errors;
    char sb[SHOWN_MAX];
    int a, i;

    *nflags = 0;
    for (a = 1; a < argc; ++a) {
        const char *arg = argv[a], *name, *eq, *value = NULL;
        if (strcmp(arg, "--") == 0) {
            for (++a; a < argc; ++a)
                report(l, "unexpected argument %s", shown(sb, argv[a], strlen(argv[a])));
            break;
        }
        if (strcmp(arg, "-h") == 0) {
            *help = 1;
            continue;
        }
        if (strncmp(arg, "--", 2) != 0) {
            if (arg[0] == '-') {
                report(l, "unknown option %s", shown(sb, arg, strlen(arg)));
            } else {
                report(l, "unexpected argument %s", shown(sb, arg, strlen(arg)));
            }
            continue;
        }
        name = arg + 2;
        eq = strchr(name, '=');
        if ((i = find_option(name, eq != NULL ? (size_t)(eq - name) : strlen(name))) < 0) {
            report(l, "unknown option %s", shown(sb, arg, eq != NULL ? (size_t)(eq - arg) : strlen(arg)));
            continue;
        }
        if (options[i].type == T_HELP) {
            if (eq != NULL)
                report(l, "--help takes no value");
            *help = 1;
            continue;
        }
        if (eq != NULL) {
            value = eq + 1;
        } else if (options[i].type != T_BOOL) {
            if (a + 1 >= argc || strncmp(argv[a + 1], "--", 2) == 0) {
                report(l, "--%s needs a value (%s)", options[i].name, options[i].metavar);
                continue;
            }
            value = argv[++a];
        }
        flags[*nflags].opt = (size_t)i;
        flags[*nflags].value = value;
        ++*nflags;
    }
    return l->errors - errors;
}

static void fill_defaults(struct st_loader_t *l)
{
    size_t i;

    for (i = 0; i != NOPTIONS; ++i) {
        const struct st_option_t *o = &options[i];
        const char *def = l->cfg->dev && o->dev_def != NULL ? o->dev_def : o->def;
        if (l->given[i] || o->type == T_HELP)
            continue;
        if ((o->flags & F_CPUS) != 0) {
            long n = sysconf(_SC_NPROCESSORS_ONLN);
            mark(l, i, L_DEFAULT);
            *(unsigned *)field_of(l, i) = (unsigned)(n < (long)o->min ? (long)o->min : n > (long)o->max ? (long)o->max : n);
        } else if (def != NULL) {
            set_text(l, i, def, L_DEFAULT);
        }
    }
}

static int given(struct st_loader_t *l, const char *name)
{
    int i = find_option(name, strlen(name));
    return i >= 0 && l->given[i];
}

static void check_file(struct st_loader_t *l, const char *opt, const char *path)
{
    struct stat st;
    int fd;

    if (path == NULL)
        return;
    if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) == -1) {
        report(l, "--%s: %s: %s", opt, path, strerror(errno));
        return;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        report(l, "--%s: %s: not a regular file", opt, path);
    close(fd);
}

/*
 * The public URL when none is given: https://<listen> (http:// with --plain), "localhost" for a loopback or wildcard
 * host under --dev; without --dev a wildcard listener has no usable default and that is reported.
 */
static void default_public_url(struct st_loader_t *l)
{
    relay_config_t *cfg = l->cfg;
    const char *host = cfg->listen.text, *scheme = cfg->plain ? "http" : "https";
    size_t host_len = (size_t)(strrchr(cfg->listen.text, ':') - cfg->listen.text), cap;
    unsigned port = addr_port(&cfg->listen);
    char portbuf[8] = "";

    if (addr_is_wildcard(&cfg->listen) && !cfg->dev) {
        report(l,
               "--public-url is required when --listen is a wildcard address (%s): give the URL browsers and "
               "instances reach the relay at, e.g. https://relay.example.com",
               cfg->listen.text);
        return;
    }
    if (cfg->dev && (addr_is_wildcard(&cfg->listen) || relay_addr_is_loopback(&cfg->listen))) {
        host = "localhost";
        host_len = 9;
    }
    if (port != (cfg->plain ? 80u : 443u))
        snprintf(portbuf, sizeof(portbuf), ":%u", port);
    cap = strlen(scheme) + 3 + host_len + strlen(portbuf) + 1;
    if ((cfg->public_url = malloc(cap)) == NULL) {
        report(l, "out of memory");
        return;
    }
    snprintf(cfg->public_url, cap, "%s://%.*s%s", scheme, (int)host_len, host, portbuf);
}

static void validate(struct st_loader_t *l)
{
    relay_config_t *cfg = l->cfg;

    /* TLS */
    if ((cfg->tls_cert != NULL) != (cfg->tls_key != NULL))
        report(l, "--tls-cert and --tls-key go together: give both or neither");
    if (cfg->plain && (cfg->tls_cert != NULL || cfg->tls_key != NULL))
        report(l, "--plain serves without TLS: drop --tls-cert and --tls-key, or drop --plain");
    if (!cfg->plain && !cfg->dev && cfg->tls_cert == NULL && cfg->tls_key == NULL)
        report(l, "--tls-cert and --tls-key are required (or --plain behind a TLS-terminating proxy, or --dev)");
    check_file(l, "tls-cert", cfg->tls_cert);
    check_file(l, "tls-key", cfg->tls_key);

    /* keys */
    if (cfg->keys == NULL && !cfg->dev)
        report(l, "--keys is required (write a key file with `authrelay keygen FILE`), or --dev for ephemeral keys");
    check_file(l, "keys", cfg->keys);

    /* listeners */
    if (cfg->listen.len != 0 && cfg->admin_listen.len != 0 && addr_overlap(&cfg->listen, &cfg->admin_listen))
        report(l, "--listen %s and --admin-listen %s overlap: give them different ports", cfg->listen.text, cfg->admin_listen.text);

    /* public URL */
    if (cfg->public_url == NULL && !given(l, "public-url") && cfg->listen.len != 0)
        default_public_url(l);
    if (cfg->public_url != NULL) {
        struct st_http_url_t u;
        if (parse_http_url(cfg->public_url, &u) == NULL && !u.https && !cfg->plain &&
            !rly_host_is_loopback(u.hp.host, u.hp.host_len))
            report(l, "--public-url: http:// only with --plain or a loopback host; use https://");
    }

    /* Redis */
    if (cfg->redis != NULL && cfg->redis_sentinel != NULL)
        report(l, "--redis and --redis-sentinel exclude each other: give one");
    if (cfg->redis_sentinel != NULL && cfg->redis_master == NULL)
        report(l, "--redis-sentinel needs --redis-master NAME");
    if (cfg->redis_master != NULL && cfg->redis_sentinel == NULL)
        report(l, "--redis-master needs --redis-sentinel H:P,...");
    if (cfg->redis_password_file != NULL) {
        if (cfg->redis == NULL && cfg->redis_sentinel == NULL)
            report(l, "--redis-password-file needs --redis or --redis-sentinel");
        if (cfg->redis != NULL && strncmp(cfg->redis, "redis://", 8) == 0 && strchr(cfg->redis + 8, '@') != NULL)
            report(l, "--redis carries a password and --redis-password-file is given: keep one");
        check_file(l, "redis-password-file", cfg->redis_password_file);
    }
    if (cfg->redis_username != NULL && cfg->redis == NULL && cfg->redis_sentinel == NULL)
        report(l, "--redis-username needs --redis or --redis-sentinel");
}

relay_config_status_t relay_config_load(relay_config_t *cfg, int argc, char **argv, FILE *err)
{
    struct st_loader_t l = {.cfg = cfg, .err = err != NULL ? err : stderr};
    struct st_flag_t *flags = NULL;
    size_t nflags = 0, j;
    json_object *root = NULL;
    const char *file = NULL;
    int help = 0;
    relay_config_status_t ret;

    memset(cfg, 0, sizeof(*cfg));
    if ((flags = calloc(argc > 0 ? (size_t)argc : 1, sizeof(*flags))) == NULL) {
        report(&l, "out of memory");
        ret = RELAY_CONFIG_INVALID;
        goto Exit;
    }

    /* the command line first: usage errors and --help end here */
    if (parse_flags(&l, argc, argv, flags, &nflags, &help) != 0 && !help) {
        fprintf(l.err, "authrelay: try `authrelay %s --help`\n", argc > 0 ? argv[0] : "serve");
        ret = RELAY_CONFIG_USAGE;
        goto Exit;
    }
    if (help) {
        relay_config_usage(stdout, argc > 0 ? argv[0] : "serve");
        ret = RELAY_CONFIG_HELP;
        goto Exit;
    }

    /* layers in increasing precedence: the file, the environment, the flags; then defaults fill what none gave */
    for (j = 0; j != nflags; ++j)
        if (strcmp(options[flags[j].opt].name, "config") == 0)
            file = flags[j].value;
    if (file == NULL && (file = getenv(ENV_PREFIX "CONFIG")) != NULL && file[0] == '\0')
        file = NULL;
    if (file != NULL && file[0] != '\0') {
        l.file = file;
        if ((root = read_json(&l, file)) != NULL)
            apply_json(&l, root);
    }
    apply_env(&l);
    for (j = 0; j != nflags; ++j) {
        if (flags[j].value == NULL) {
            mark(&l, flags[j].opt, L_FLAG);
            *(int *)field_of(&l, flags[j].opt) = 1;
        } else {
            set_text(&l, flags[j].opt, flags[j].value, L_FLAG);
        }
    }
    fill_defaults(&l);
    validate(&l);
    ret = l.errors != 0 ? RELAY_CONFIG_INVALID : RELAY_CONFIG_OK;

Exit:
    if (root != NULL)
        json_object_put(root);
    free(flags);
    if (ret != 0)
        relay_config_free(cfg);
    return ret;
}

relay_config_status_t relay_config_load_json(relay_config_t *cfg, const char *text, size_t len, FILE *err)
{
    struct st_loader_t l = {.cfg = cfg, .err = err != NULL ? err : stderr, .file = "(config text)"};
    json_object *root = NULL;
    relay_config_status_t ret;

    memset(cfg, 0, sizeof(*cfg));
    if (len > CONFIG_FILE_MAX) {
        report(&l, "%s: too large (at most %d bytes)", l.file, CONFIG_FILE_MAX);
    } else if ((root = parse_json(&l, text, len)) != NULL) {
        apply_json(&l, root);
        json_object_put(root);
    }
    fill_defaults(&l);
    validate(&l);
    ret = l.errors != 0 ? RELAY_CONFIG_INVALID : RELAY_CONFIG_OK;
    if (ret != RELAY_CONFIG_OK)
        relay_config_free(cfg);
    return ret;
}

static void print_indented(FILE *out, const char *text)
{
    while (*text != '\0') {
        size_t len = strcspn(text, "\n");
        fprintf(out, "      %.*s\n", (int)len, text);
        text += len;
        if (*text == '\n')
            ++text;
    }
}

void relay_config_usage(FILE *out, const char *subcommand)
{
    int w_flag = (int)strlen("option"), w_env = (int)strlen("environment");
    char flag[64], env[64];
    size_t i;

    if (subcommand == NULL)
        subcommand = "serve";
    for (i = 0; i != NOPTIONS; ++i) {
        int n = 2 + (int)strlen(options[i].name) + (options[i].metavar != NULL ? 1 + (int)strlen(options[i].metavar) : 0);
        if (n > w_flag)
            w_flag = n;
        env_name(&options[i], env, sizeof(env));
        if ((options[i].flags & F_NOENV) == 0 && (int)strlen(env) > w_env)
            w_env = (int)strlen(env);
    }

    fprintf(out, "usage: authrelay %s [--dev] [--config FILE] [options]\n\n", subcommand);
    if (strcmp(subcommand, "check-config") == 0)
        fputs("Checks the whole configuration and prints \"configuration OK\" or every error (exit 0 / 1).\n\n", out);
    fputs("Every option can also be set by its environment variable or, without the leading \"--\",\n"
          "as a key of the JSON file named by --config. Precedence: flags, then environment,\n"
          "then the config file, then defaults. --dev changes defaults only: an option given\n"
          "explicitly always wins. Lists in the environment are comma-separated; booleans\n"
          "take 1, 0, true or false (flags: --plain, --plain=false).\n\n",
          out);
    fprintf(out, "  %-*s  %-*s  %s\n", w_flag, "option", w_env, "environment", "default");
    for (i = 0; i != NOPTIONS; ++i) {
        const struct st_option_t *o = &options[i];
        const char *def = o->def_text != NULL ? o->def_text : o->def != NULL ? o->def : "none";
        snprintf(flag, sizeof(flag), "--%s%s%s", o->name, o->metavar != NULL ? " " : "", o->metavar != NULL ? o->metavar : "");
        if ((o->flags & F_NOENV) != 0) {
            snprintf(env, sizeof(env), "-");
        } else {
            env_name(o, env, sizeof(env));
        }
        if (o->type == T_HELP) {
            fprintf(out, "  %s\n", flag);
        } else {
            fprintf(out, "  %-*s  %-*s  %s\n", w_flag, flag, w_env, env, def);
        }
        print_indented(out, o->help);
        if (o->type == T_UINT)
            fprintf(out, "      range %lu..%lu\n", o->min, o->max);
        if (o->dev_def != NULL || o->dev_text != NULL)
            fprintf(out, "      --dev default: %s\n", o->dev_text != NULL ? o->dev_text : o->dev_def);
    }
}

void relay_config_free(relay_config_t *cfg)
{
    free(cfg->config_file);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    free(cfg->public_url);
    free(cfg->redis);
    free(cfg->redis_sentinel);
    free(cfg->redis_master);
    free(cfg->redis_password_file);
    free(cfg->redis_username);
    free(cfg->keys);
    list_clear(cfg->allow_as, &cfg->allow_as_count);
    list_clear(cfg->allow_client_id, &cfg->allow_client_id_count);
    list_clear(cfg->trusted_proxy, &cfg->trusted_proxy_count);
    memset(cfg, 0, sizeof(*cfg));
}

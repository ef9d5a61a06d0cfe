/* test_config.c: unit tests of relay/config.c: defaults, --dev, env twins, JSON file, precedence, bounds, checks */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "config.h"

/* every option of the command-line contract (design.md) and its environment twin */
static const char *const contract[][2] = {
    {"--dev", "AUTHRELAY_DEV"},
    {"--config", "AUTHRELAY_CONFIG"},
    {"--listen", "AUTHRELAY_LISTEN"},
    {"--plain", "AUTHRELAY_PLAIN"},
    {"--tls-cert", "AUTHRELAY_TLS_CERT"},
    {"--tls-key", "AUTHRELAY_TLS_KEY"},
    {"--admin-listen", "AUTHRELAY_ADMIN_LISTEN"},
    {"--public-url", "AUTHRELAY_PUBLIC_URL"},
    {"--redis", "AUTHRELAY_REDIS"},
    {"--redis-sentinel", "AUTHRELAY_REDIS_SENTINEL"},
    {"--redis-master", "AUTHRELAY_REDIS_MASTER"},
    {"--redis-password-file", "AUTHRELAY_REDIS_PASSWORD_FILE"},
    {"--keys", "AUTHRELAY_KEYS"},
    {"--allow-as", "AUTHRELAY_ALLOW_AS"},
    {"--session-ttl-max", "AUTHRELAY_SESSION_TTL_MAX"},
    {"--wait-max", "AUTHRELAY_WAIT_MAX"},
    {"--threads", "AUTHRELAY_THREADS"},
    {"--shutdown-grace", "AUTHRELAY_SHUTDOWN_GRACE"},
    {"--rate-limit", "AUTHRELAY_RATE_LIMIT"},
    {"--log-level", "AUTHRELAY_LOG_LEVEL"},
};
#define NCONTRACT (sizeof(contract) / sizeof(contract[0]))

static char tmpdir[64];
static char cert[128], key[128], keys[128], rpass[128];
static char *last_err; /* what the last load wrote to err */

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(text, fp);
    assert_int_equal(fclose(fp), 0);
}

/* a new file in tmpdir holding text; the caller frees the returned path */
static char *temp_file(const char *text)
{
    char *path = malloc(128);
    int fd;

    assert_non_null(path);
    snprintf(path, 128, "%s/cfg-XXXXXX", tmpdir);
    assert_true((fd = mkstemp(path)) >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    return path;
}

static void clear_env(void)
{
    size_t i;

    for (i = 0; i != NCONTRACT; ++i)
        unsetenv(contract[i][1]);
}

static int group_setup(void **state)
{
    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/authrelay-test-config-XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(cert, sizeof(cert), "%s/cert.pem", tmpdir);
    snprintf(key, sizeof(key), "%s/key.pem", tmpdir);
    snprintf(keys, sizeof(keys), "%s/keys", tmpdir);
    snprintf(rpass, sizeof(rpass), "%s/redis.pass", tmpdir);
    write_text(cert, "-----BEGIN CERTIFICATE-----\nplaceholder\n-----END CERTIFICATE-----\n");
    write_text(key, "-----BEGIN PRIVATE KEY-----\nplaceholder\n-----END PRIVATE KEY-----\n");
    write_text(keys, "placeholder key file\n");
    write_text(rpass, "s3cret\n");
    return 0;
}

static int group_teardown(void **state)
{
    char cmd[128];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    free(last_err);
    last_err = NULL;
    return system(cmd) == 0 ? 0 : -1;
}

static int test_setup(void **state)
{
    (void)state;
    clear_env();
    return 0;
}

/* relay_config_load on {"serve", args..., NULL}; err goes to last_err */
static int load_args(relay_config_t *cfg, const char **args)
{
    size_t size = 0;
    FILE *err;
    int argc = 0, ret;

    while (args[argc] != NULL)
        ++argc;
    free(last_err);
    last_err = NULL;
    assert_non_null(err = open_memstream(&last_err, &size));
    ret = relay_config_load(cfg, argc, (char **)args, err);
    fclose(err);
    return ret;
}

#define LOAD(cfg, ...) load_args((cfg), (const char *[]){"serve", __VA_ARGS__, NULL})
#define LOAD0(cfg) load_args((cfg), (const char *[]){"serve", NULL})
/* the flags a production configuration cannot do without */
#define PROD "--tls-cert", cert, "--tls-key", key, "--keys", keys, "--public-url", "https://relay.example.com"

static int err_has(const char *needle)
{
    return last_err != NULL && strstr(last_err, needle) != NULL;
}

static size_t err_lines(void)
{
    size_t n = 0;
    const char *p;

    for (p = last_err; p != NULL && (p = strstr(p, "authrelay: ")) != NULL; ++p)
        ++n;
    return n;
}

#define assert_err(needle)                                                                                                         \
    do {                                                                                                                           \
        if (!err_has(needle))                                                                                                      \
            fail_msg("expected \"%s\" in:\n%s", (needle), last_err != NULL ? last_err : "(nothing)");                              \
    } while (0)

static unsigned cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > 256 ? 256 : (unsigned)n;
}

static void assert_v4(const relay_addr_t *a, const char *ip, unsigned port)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)&a->ss;
    char buf[INET_ADDRSTRLEN];

    assert_int_equal(sin->sin_family, AF_INET);
    assert_int_equal(a->len, sizeof(*sin));
    assert_string_equal(inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf)), ip);
    assert_int_equal(ntohs(sin->sin_port), port);
}

static void test_defaults(void **state)
{
    relay_config_t cfg;

    (void)state;
    assert_int_equal(LOAD(&cfg, PROD), 0);
    assert_string_equal(last_err, "");
    assert_int_equal(cfg.dev, 0);
    assert_null(cfg.config_file);
    assert_string_equal(cfg.listen.text, "0.0.0.0:8443");
    assert_v4(&cfg.listen, "0.0.0.0", 8443);
    assert_string_equal(cfg.admin_listen.text, "127.0.0.1:9090");
    assert_v4(&cfg.admin_listen, "127.0.0.1", 9090);
    assert_int_equal(cfg.plain, 0);
    assert_string_equal(cfg.tls_cert, cert);
    assert_string_equal(cfg.tls_key, key);
    assert_string_equal(cfg.keys, keys);
    assert_string_equal(cfg.public_url, "https://relay.example.com");
    assert_null(cfg.redis);
    assert_null(cfg.redis_sentinel);
    assert_null(cfg.redis_master);
    assert_null(cfg.redis_password_file);
    assert_int_equal(cfg.allow_as_count, 0);
    assert_int_equal(cfg.session_ttl_max, 600);
    assert_int_equal(cfg.wait_max, 30);
    assert_int_equal(cfg.threads, cpus());
    assert_int_equal(cfg.shutdown_grace, 10);
    assert_int_equal(cfg.rate_limit, 600);
    assert_int_equal(cfg.log_level, RLY_LOG_INFO);
    relay_config_free(&cfg);
    relay_config_free(&cfg); /* freeing twice is harmless */
}

static void test_default_public_url(void **state)
{
    relay_config_t cfg;

    (void)state;
    /* https://<listen>, default ports left out */
    assert_int_equal(LOAD(&cfg, "--tls-cert", cert, "--tls-key", key, "--keys", keys, "--listen", "10.1.2.3:8443"), 0);
    assert_string_equal(cfg.public_url, "https://10.1.2.3:8443");
    relay_config_free(&cfg);
    assert_int_equal(LOAD(&cfg, "--tls-cert", cert, "--tls-key", key, "--keys", keys, "--listen", "[2001:db8::1]:443"), 0);
    assert_string_equal(cfg.public_url, "https://[2001:db8::1]");
    relay_config_free(&cfg);
    assert_int_equal(LOAD(&cfg, "--plain", "--keys", keys, "--listen", "10.0.0.1:80"), 0);
    assert_string_equal(cfg.public_url, "http://10.0.0.1");
    relay_config_free(&cfg);
    assert_int_equal(LOAD(&cfg, "--plain", "--keys", keys, "--listen", "localhost:8080"), 0);
    assert_string_equal(cfg.public_url, "http://localhost:8080");
    relay_config_free(&cfg);

    /* a wildcard listener has no usable default outside --dev */
    assert_int_equal(LOAD(&cfg, "--tls-cert", cert, "--tls-key", key, "--keys", keys), 1);
    assert_err("authrelay: --public-url is required when --listen is a wildcard address (0.0.0.0:8443)");
    assert_int_equal(LOAD(&cfg, "--plain", "--keys", keys, "--listen", "[::]:8080"), 1);
    assert_err("--public-url is required when --listen is a wildcard address ([::]:8080)");
    /* under --dev it is localhost */
    assert_int_equal(LOAD(&cfg, "--dev", "--listen", "0.0.0.0:9443"), 0);
    assert_string_equal(cfg.public_url, "https://localhost:9443");
    relay_config_free(&cfg);
}

static void test_dev_defaults(void **state)
{
    relay_config_t cfg;

    (void)state;
    assert_int_equal(LOAD(&cfg, "--dev"), 0);
    assert_string_equal(last_err, "");
    assert_int_equal(cfg.dev, 1);
    assert_string_equal(cfg.listen.text, "127.0.0.1:8443");
    assert_v4(&cfg.listen, "127.0.0.1", 8443);
    assert_string_equal(cfg.admin_listen.text, "127.0.0.1:9090");
    assert_string_equal(cfg.public_url, "https://localhost:8443");
    assert_null(cfg.keys);
    assert_null(cfg.tls_cert);
    assert_null(cfg.tls_key);
    assert_null(cfg.redis);
    assert_int_equal(cfg.plain, 0);
    assert_int_equal(cfg.wait_max, 30);
    relay_config_free(&cfg);

    assert_int_equal(LOAD(&cfg, "--dev", "--plain"), 0);
    assert_string_equal(cfg.public_url, "http://localhost:8443");
    relay_config_free(&cfg);

    /* --dev=false is no dev at all */
    assert_int_equal(LOAD(&cfg, "--dev=false"), 1);
    assert_err("--keys is required");
}

static void test_dev_overridden(void **state)
{
    relay_config_t cfg;

    (void)state;
    assert_int_equal(LOAD(&cfg, "--dev", "--listen", "127.0.0.1:9443", "--keys", keys, "--tls-cert", cert, "--tls-key", key,
                          "--redis", "redis://localhost:6379", "--public-url", "https://dev.example.com/", "--log-level", "debug"),
                     0);
    assert_int_equal(cfg.dev, 1);
    assert_string_equal(cfg.listen.text, "127.0.0.1:9443");
    assert_string_equal(cfg.keys, keys);
    assert_string_equal(cfg.tls_cert, cert);
    assert_string_equal(cfg.tls_key, key);
    assert_string_equal(cfg.redis, "redis://localhost:6379");
    assert_string_equal(cfg.public_url, "https://dev.example.com");
    assert_int_equal(cfg.log_level, RLY_LOG_DEBUG);
    relay_config_free(&cfg);

    /* the derived public URL follows an explicit listen */
    assert_int_equal(LOAD(&cfg, "--dev", "--listen", "[::1]:9000"), 0);
    assert_string_equal(cfg.public_url, "https://localhost:9000");
    relay_config_free(&cfg);

    /* --dev from the environment, the explicit flag still wins */
    setenv("AUTHRELAY_DEV", "1", 1);
    assert_int_equal(LOAD(&cfg, "--listen", "127.0.0.1:7000"), 0);
    assert_int_equal(cfg.dev, 1);
    assert_string_equal(cfg.listen.text, "127.0.0.1:7000");
    relay_config_free(&cfg);
    /* and a flag turns it off again */
    assert_int_equal(LOAD(&cfg, "--dev=0"), 1);
    assert_err("--keys is required");
}

static void test_env_twins(void **state)
{
    relay_config_t cfg;

    (void)state;
    setenv("AUTHRELAY_TLS_CERT", cert, 1);
    setenv("AUTHRELAY_TLS_KEY", key, 1);
    setenv("AUTHRELAY_KEYS", keys, 1);
    setenv("AUTHRELAY_LISTEN", "[::1]:8443", 1);
    setenv("AUTHRELAY_ADMIN_LISTEN", "localhost:9191", 1);
    setenv("AUTHRELAY_WAIT_MAX", "12", 1);
    setenv("AUTHRELAY_SESSION_TTL_MAX", "3600", 1);
    setenv("AUTHRELAY_THREADS", "3", 1);
    setenv("AUTHRELAY_SHUTDOWN_GRACE", "0", 1);
    setenv("AUTHRELAY_RATE_LIMIT", "0", 1);
    setenv("AUTHRELAY_LOG_LEVEL", "warn", 1);
    setenv("AUTHRELAY_ALLOW_AS", "Auth.Atlassian.com,example.org", 1);
    setenv("AUTHRELAY_REDIS_SENTINEL", "10.0.0.1:26379,10.0.0.2:26379", 1);
    setenv("AUTHRELAY_REDIS_MASTER", "mymaster", 1);
    setenv("AUTHRELAY_REDIS_PASSWORD_FILE", rpass, 1);
    setenv("AUTHRELAY_PUBLIC_URL", "https://relay.example.com/base/", 1);
    setenv("AUTHRELAY_REDIS", "", 1); /* empty: unset */
    assert_int_equal(LOAD0(&cfg), 0);
    assert_string_equal(last_err, "");
    assert_string_equal(cfg.listen.text, "[::1]:8443");
    assert_int_equal(cfg.listen.ss.ss_family, AF_INET6);
    assert_int_equal(cfg.listen.len, sizeof(struct sockaddr_in6));
    assert_v4(&cfg.admin_listen, "127.0.0.1", 9191);
    assert_int_equal(cfg.wait_max, 12);
    assert_int_equal(cfg.session_ttl_max, 3600);
    assert_int_equal(cfg.threads, 3);
    assert_int_equal(cfg.shutdown_grace, 0);
    assert_int_equal(cfg.rate_limit, 0);
    assert_int_equal(cfg.log_level, RLY_LOG_WARN);
    assert_int_equal(cfg.allow_as_count, 2);
    assert_string_equal(cfg.allow_as[0], "auth.atlassian.com");
    assert_string_equal(cfg.allow_as[1], "example.org");
    assert_string_equal(cfg.redis_sentinel, "10.0.0.1:26379,10.0.0.2:26379");
    assert_string_equal(cfg.redis_master, "mymaster");
    assert_string_equal(cfg.redis_password_file, rpass);
    assert_null(cfg.redis);
    assert_string_equal(cfg.public_url, "https://relay.example.com/base");
    relay_config_free(&cfg);

    /* booleans: 1/0/true/false */
    clear_env();
    setenv("AUTHRELAY_PLAIN", "true", 1);
    setenv("AUTHRELAY_KEYS", keys, 1);
    setenv("AUTHRELAY_LISTEN", "127.0.0.1:8080", 1);
    assert_int_equal(LOAD0(&cfg), 0);
    assert_int_equal(cfg.plain, 1);
    assert_string_equal(cfg.public_url, "http://127.0.0.1:8080");
    relay_config_free(&cfg);

    /* a bad value names the variable */
    setenv("AUTHRELAY_PLAIN", "yes", 1);
    setenv("AUTHRELAY_WAIT_MAX", "999", 1);
    setenv("AUTHRELAY_THREADS", "four", 1);
    assert_int_equal(LOAD0(&cfg), 1);
    assert_err("authrelay: AUTHRELAY_PLAIN: must be true, false, 1 or 0, not \"yes\"");
    assert_err("authrelay: AUTHRELAY_WAIT_MAX: must be between 0 and 300");
    assert_err("authrelay: AUTHRELAY_THREADS: not a whole number: \"four\"");
}

static void test_precedence(void **state)
{
    relay_config_t cfg;
    char *file = temp_file("{\"wait-max\": 5, \"threads\": 2, \"log-level\": \"error\", \"allow-as\": [\"file.example\"],\n"
                           " \"keys\": \"/nonexistent/overridden\"}\n");

    (void)state;
    /* file < env < flag */
    setenv("AUTHRELAY_CONFIG", file, 1);
    setenv("AUTHRELAY_WAIT_MAX", "6", 1);
    setenv("AUTHRELAY_ALLOW_AS", "env.example", 1);
    setenv("AUTHRELAY_KEYS", keys, 1);
    assert_int_equal(LOAD(&cfg, "--dev", "--wait-max", "7", "--allow-as", "flag1.example", "--allow-as=flag2.example"), 0);
    assert_string_equal(cfg.config_file, file);
    assert_int_equal(cfg.wait_max, 7);
    assert_int_equal(cfg.threads, 2);
    assert_int_equal(cfg.log_level, RLY_LOG_ERROR);
    assert_string_equal(cfg.keys, keys);
    /* a higher layer replaces a list, it does not add to it */
    assert_int_equal(cfg.allow_as_count, 2);
    assert_string_equal(cfg.allow_as[0], "flag1.example");
    assert_string_equal(cfg.allow_as[1], "flag2.example");
    relay_config_free(&cfg);

    assert_int_equal(LOAD(&cfg, "--dev"), 0);
    assert_int_equal(cfg.wait_max, 6);
    assert_int_equal(cfg.allow_as_count, 1);
    assert_string_equal(cfg.allow_as[0], "env.example");
    relay_config_free(&cfg);

    unsetenv("AUTHRELAY_WAIT_MAX");
    unsetenv("AUTHRELAY_ALLOW_AS");
    assert_int_equal(LOAD(&cfg, "--dev"), 0);
    assert_int_equal(cfg.wait_max, 5);
    assert_int_equal(cfg.allow_as_count, 1);
    assert_string_equal(cfg.allow_as[0], "file.example");
    relay_config_free(&cfg);

    /* --config beats AUTHRELAY_CONFIG */
    {
        char *other = temp_file("{\"wait-max\": 9}");
        assert_int_equal(LOAD(&cfg, "--dev", "--config", other), 0);
        assert_int_equal(cfg.wait_max, 9);
        assert_string_equal(cfg.config_file, other);
        relay_config_free(&cfg);
        unlink(other);
        free(other);
    }
    unlink(file);
    free(file);
}

static void test_json_every_type(void **state)
{
    relay_config_t cfg;
    char text[2048], *file;

    (void)state;
    snprintf(text, sizeof(text),
             "{\n"
             "  \"dev\": false,\n"
             "  \"listen\": \"192.0.2.10:8443\",\n"
             "  \"plain\": false,\n"
             "  \"tls-cert\": \"%s\",\n"
             "  \"tls-key\": \"%s\",\n"
             "  \"admin-listen\": \"[::1]:9090\",\n"
             "  \"public-url\": \"https://relay.example.com/\",\n"
             "  \"redis-sentinel\": \"sentinel-0:26379,[2001:db8::2]:26379\",\n"
             "  \"redis-master\": \"mymaster\",\n"
             "  \"redis-password-file\": \"%s\",\n"
             "  \"keys\": \"%s\",\n"
             "  \"allow-as\": [\"AUTH.atlassian.com\", \"127.0.0.1\", \"[::1]\"],\n"
             "  \"session-ttl-max\": 86400,\n"
             "  \"wait-max\": 0,\n"
             "  \"threads\": 256,\n"
             "  \"shutdown-grace\": 3600,\n"
             "  \"rate-limit\": 1000000,\n"
             "  \"log-level\": \"debug\"\n"
             "}\n",
             cert, key, rpass, keys);
    file = temp_file(text);
    assert_int_equal(LOAD(&cfg, "--config", file), 0);
    assert_string_equal(last_err, "");
    assert_int_equal(cfg.dev, 0);
    assert_v4(&cfg.listen, "192.0.2.10", 8443);
    assert_int_equal(cfg.admin_listen.ss.ss_family, AF_INET6);
    assert_string_equal(cfg.tls_cert, cert);
    assert_string_equal(cfg.tls_key, key);
    assert_string_equal(cfg.public_url, "https://relay.example.com");
    assert_string_equal(cfg.redis_sentinel, "sentinel-0:26379,[2001:db8::2]:26379");
    assert_string_equal(cfg.redis_master, "mymaster");
    assert_string_equal(cfg.redis_password_file, rpass);
    assert_string_equal(cfg.keys, keys);
    assert_int_equal(cfg.allow_as_count, 3);
    assert_string_equal(cfg.allow_as[0], "auth.atlassian.com");
    assert_string_equal(cfg.allow_as[1], "127.0.0.1");
    assert_string_equal(cfg.allow_as[2], "[::1]");
    assert_int_equal(cfg.session_ttl_max, 86400);
    assert_int_equal(cfg.wait_max, 0);
    assert_int_equal(cfg.threads, 256);
    assert_int_equal(cfg.shutdown_grace, 3600);
    assert_int_equal(cfg.rate_limit, 1000000);
    assert_int_equal(cfg.log_level, RLY_LOG_DEBUG);
    relay_config_free(&cfg);
    unlink(file);
    free(file);

    /* the shipped example parses (paths aside) */
    {
#ifdef RLY_SOURCE_DIR
        relay_config_t ex;
        assert_int_equal(LOAD(&ex, "--config", RLY_SOURCE_DIR "/deploy/authrelay.example.json"), 1);
        /* only the files it names are missing here */
        assert_int_equal(err_lines(), 4);
        assert_err("--tls-cert: /etc/authrelay/tls/fullchain.pem: No such file or directory");
        assert_err("--tls-key: ");
        assert_err("--keys: ");
        assert_err("--redis-password-file: ");
#endif
    }
}

static void test_json_errors(void **state)
{
    relay_config_t cfg;
    char *file, line[256];

    (void)state;
    file = temp_file("{\"wait-max\": \"30\", \"threads\": 2.5, \"rate-limit\": -1, \"plain\": \"yes\", \"listen\": 8443,\n"
                     " \"allow-as\": \"a.example\", \"keys\": null, \"log-level\": \"loud\", \"bogus\": 1, \"config\": \"x\",\n"
                     " \"session-ttl-max\": 59, \"admin-listen\": [\"127.0.0.1:1\"], \"tls-cert\": \"\"}");
    assert_int_equal(LOAD(&cfg, "--dev", "--config", file), 1);
#define FILE_ERR(what)                                                                                                             \
    do {                                                                                                                           \
        snprintf(line, sizeof(line), "authrelay: %s: %s", file, (what));                                                           \
        assert_err(line);                                                                                                          \
    } while (0)
    FILE_ERR("wait-max: must be a whole number");
    FILE_ERR("threads: must be a whole number");
    FILE_ERR("rate-limit: must be between 0 and 1000000");
    FILE_ERR("plain: must be true or false");
    FILE_ERR("listen: must be a string");
    FILE_ERR("allow-as: must be an array of strings");
    FILE_ERR("keys: must be a string");
    FILE_ERR("log-level: must be debug, info, warn or error");
    FILE_ERR("unknown key \"bogus\"");
    FILE_ERR("unknown key \"config\"");
    FILE_ERR("session-ttl-max: must be between 60 and 86400");
    FILE_ERR("admin-listen: must be a string");
    FILE_ERR("tls-cert: must not be empty");
    assert_int_equal(err_lines(), 13);
    unlink(file);
    free(file);

    /* list elements must be strings */
    file = temp_file("{\"allow-as\": [\"a.example\", 3]}");
    assert_int_equal(LOAD(&cfg, "--dev", "--config", file), 1);
    FILE_ERR("allow-as: must be an array of strings");
    unlink(file);
    free(file);

    /* not JSON, not an object, trailing junk, comments, too deep */
    file = temp_file("{\"wait-max\": 30,\n \"threads\": }\n");
    assert_int_equal(LOAD(&cfg, "--dev", "--config", file), 1);
    FILE_ERR("invalid JSON at line 2");
    unlink(file);
    free(file);
    file = temp_file("[1, 2]");
    assert_int_equal(LOAD(&cfg, "--dev", "--config", file), 1);
    FILE_ERR("must hold one JSON object");
    unlink(file);
    free(file);
    file = temp_file("{\"wait-max\": 30} {}");
    assert_int_equal(LOAD(&cfg, "--dev", "--config", file), 1);
    FILE_ERR("invalid JSON");
    unlink(file);
    free(file);
    file = temp_file("{/* comment */ \"wait-max\": 30}");
    assert_int_equal(LOAD(&cfg, "--dev", "--config", file), 1);
    FILE_ERR("invalid JSON");
    unlink(file);
    free(file);
    file = temp_file("{\"wait-max\": 30,}");
    assert_int_equal(LOAD(&cfg, "--dev", "--config", file), 1);
    FILE_ERR("invalid JSON");
    unlink(file);
    free(file);
    file = temp_file("{\"a\": [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}");
    assert_int_equal(LOAD(&cfg, "--dev", "--config", file), 1);
    FILE_ERR("invalid JSON");
    unlink(file);
    free(file);
    file = temp_file("");
    assert_int_equal(LOAD(&cfg, "--dev", "--config", file), 1);
    FILE_ERR("invalid JSON");
    unlink(file);
    free(file);
#undef FILE_ERR

    /* an empty object is a valid file */
    file = temp_file("{}\n");
    assert_int_equal(LOAD(&cfg, "--dev", "--config", file), 0);
    relay_config_free(&cfg);
    unlink(file);
    free(file);

    /* a file that is not there, or not a file */
    assert_int_equal(LOAD(&cfg, "--dev", "--config", "/nonexistent/authrelay.json"), 1);
    assert_err("authrelay: /nonexistent/authrelay.json: No such file or directory");
    assert_int_equal(LOAD(&cfg, "--dev", "--config", tmpdir), 1);
    assert_err("not a regular file");
    setenv("AUTHRELAY_CONFIG", "/nonexistent/env.json", 1);
    assert_int_equal(LOAD(&cfg, "--dev"), 1);
    assert_err("authrelay: /nonexistent/env.json: No such file or directory");
}

struct bound_t {
    const char *flag;
    unsigned long min, max;
    size_t off;
};

static void test_bounds(void **state)
{
    static const struct bound_t bounds[] = {
        {"--session-ttl-max", 60, 86400, offsetof(relay_config_t, session_ttl_max)},
        {"--wait-max", 0, 300, offsetof(relay_config_t, wait_max)},
        {"--threads", 1, 256, offsetof(relay_config_t, threads)},
        {"--shutdown-grace", 0, 3600, offsetof(relay_config_t, shutdown_grace)},
        {"--rate-limit", 0, 1000000, offsetof(relay_config_t, rate_limit)},
    };
    static const char *const not_numbers[] = {"", "-1", "+5", " 5", "5 ", "5x", "0x10", "1e3", "3.0"};
    relay_config_t cfg;
    char v[32], msg[128];
    size_t i, j;

    (void)state;
    for (i = 0; i != sizeof(bounds) / sizeof(bounds[0]); ++i) {
        const struct bound_t *b = &bounds[i];
        snprintf(msg, sizeof(msg), "authrelay: %s: must be between %lu and %lu\n", b->flag, b->min, b->max);
        /* at the limits */
        snprintf(v, sizeof(v), "%lu", b->min);
        assert_int_equal(LOAD(&cfg, "--dev", b->flag, v), 0);
        assert_int_equal(*(unsigned *)((char *)&cfg + b->off), b->min);
        relay_config_free(&cfg);
        snprintf(v, sizeof(v), "%lu", b->max);
        assert_int_equal(LOAD(&cfg, "--dev", b->flag, v), 0);
        assert_int_equal(*(unsigned *)((char *)&cfg + b->off), b->max);
        relay_config_free(&cfg);
        /* beyond them */
        snprintf(v, sizeof(v), "%lu", b->max + 1);
        assert_int_equal(LOAD(&cfg, "--dev", b->flag, v), 1);
        assert_string_equal(last_err, msg);
        if (b->min > 0) {
            snprintf(v, sizeof(v), "%lu", b->min - 1);
            assert_int_equal(LOAD(&cfg, "--dev", b->flag, v), 1);
            assert_string_equal(last_err, msg);
        }
        assert_int_equal(LOAD(&cfg, "--dev", b->flag, "99999999999999999999999999"), 1);
        assert_string_equal(last_err, msg);
        for (j = 0; j != sizeof(not_numbers) / sizeof(not_numbers[0]); ++j) {
            snprintf(msg, sizeof(msg), "%s=%s", b->flag, not_numbers[j]);
            assert_int_equal(LOAD(&cfg, "--dev", msg), 1);
            snprintf(msg, sizeof(msg), "authrelay: %s: not a whole number", b->flag);
            assert_err(msg);
        }
    }

    /* log level */
    assert_int_equal(LOAD(&cfg, "--dev", "--log-level", "error"), 0);
    assert_int_equal(cfg.log_level, RLY_LOG_ERROR);
    relay_config_free(&cfg);
    assert_int_equal(LOAD(&cfg, "--dev", "--log-level", "verbose"), 1);
    assert_err("authrelay: --log-level: must be debug, info, warn or error, not \"verbose\"");

    /* booleans as flags */
    assert_int_equal(LOAD(&cfg, "--dev", "--plain=maybe"), 1);
    assert_err("authrelay: --plain: must be true, false, 1 or 0");
}

static void test_all_errors_at_once(void **state)
{
    relay_config_t cfg;
    char *file = temp_file("{\"threads\": 0}");

    (void)state;
    setenv("AUTHRELAY_RATE_LIMIT", "-3", 1);
    assert_int_equal(LOAD(&cfg, "--config", file, "--wait-max", "301", "--listen", "1.2.3.4", "--admin-listen", "[::1]",
                          "--public-url", "ftp://x", "--redis", "nope", "--redis-master", "m", "--tls-cert", cert),
                     1);
    assert_err("threads: must be between 1 and 256");
    assert_err("AUTHRELAY_RATE_LIMIT: not a whole number");
    assert_err("--wait-max: must be between 0 and 300");
    assert_err("--listen: \"1.2.3.4\"");
    assert_err("--admin-listen: \"[::1]\"");
    assert_err("--public-url: must be an absolute https:// URL");
    assert_err("--redis: must be redis://[:password@]host:port[/db] or unix:///path");
    assert_err("--redis-master needs --redis-sentinel");
    assert_err("--tls-cert and --tls-key go together");
    assert_err("--keys is required");
    assert_int_equal(err_lines(), 10);
    unlink(file);
    free(file);
}

static void test_usage_errors(void **state)
{
    relay_config_t cfg;

    (void)state;
    assert_int_equal(LOAD(&cfg, "--dev", "--bogus"), 2);
    assert_err("authrelay: unknown option \"--bogus\"");
    assert_err("authrelay: try `authrelay serve --help`");
    assert_int_equal(LOAD(&cfg, "--dev", "--bogus=1"), 2);
    assert_err("unknown option \"--bogus\"");
    assert_int_equal(LOAD(&cfg, "--dev", "-x"), 2);
    assert_err("unknown option \"-x\"");
    assert_int_equal(LOAD(&cfg, "--dev", "--wait-max"), 2);
    assert_err("authrelay: --wait-max needs a value (SEC)");
    assert_int_equal(LOAD(&cfg, "--listen", "--dev"), 2);
    assert_err("--listen needs a value");
    assert_int_equal(LOAD(&cfg, "--dev", "stray"), 2);
    assert_err("authrelay: unexpected argument \"stray\"");
    assert_int_equal(LOAD(&cfg, "--dev", "--", "--wait-max"), 2);
    assert_err("unexpected argument \"--wait-max\"");
    /* no prefix matching, no single-dash long options */
    assert_int_equal(LOAD(&cfg, "--dev", "--wait", "3"), 2);
    assert_int_equal(LOAD(&cfg, "--dev", "-wait-max", "3"), 2);
    /* every usage error at once */
    assert_int_equal(LOAD(&cfg, "--a", "--b", "c", "--keys"), 2);
    assert_int_equal(err_lines(), 5);
    /* a usage error leaves nothing to free */
    assert_null(cfg.public_url);
    assert_int_equal(cfg.allow_as_count, 0);
}

static char *run_help(int *ret, const char **args)
{
    char path[128], *text;
    relay_config_t cfg;
    int fd, saved;
    FILE *fp;
    long len;

    snprintf(path, sizeof(path), "%s/help-XXXXXX", tmpdir);
    assert_true((fd = mkstemp(path)) >= 0);
    fflush(stdout);
    assert_true((saved = dup(1)) >= 0);
    assert_int_equal(dup2(fd, 1), 1);
    *ret = load_args(&cfg, args);
    fflush(stdout);
    assert_int_equal(dup2(saved, 1), 1);
    close(saved);
    close(fd);
    assert_non_null(fp = fopen(path, "r"));
    fseek(fp, 0, SEEK_END);
    len = ftell(fp);
    rewind(fp);
    assert_non_null(text = calloc(1, (size_t)len + 1));
    assert_int_equal(fread(text, 1, (size_t)len, fp), (size_t)len);
    fclose(fp);
    unlink(path);
    return text;
}

static void test_help(void **state)
{
    char *text, *p;
    size_t size = 0, i;
    FILE *fp;
    int ret;

    (void)state;
    text = run_help(&ret, (const char *[]){"serve", "--wait-max", "3", "--help", NULL});
    assert_int_equal(ret, 3);
    assert_non_null(strstr(text, "usage: authrelay serve"));
    for (i = 0; i != NCONTRACT; ++i) {
        if (strstr(text, contract[i][0]) == NULL || strstr(text, contract[i][1]) == NULL)
            fail_msg("--help does not mention %s / %s", contract[i][0], contract[i][1]);
    }
    assert_non_null(strstr(text, "--help"));
    /* defaults and bounds are there */
    assert_non_null(strstr(text, "0.0.0.0:8443"));
    assert_non_null(strstr(text, "127.0.0.1:9090"));
    assert_non_null(strstr(text, "60..86400"));
    assert_non_null(strstr(text, "0..300"));
    /* nothing wider than 100 columns, no trailing blanks */
    for (p = text; *p != '\0';) {
        size_t len = strcspn(p, "\n");
        assert_true(len <= 100);
        assert_true(len == 0 || p[len - 1] != ' ');
        p += len + (p[len] == '\n');
    }
    free(text);

    /* help wins over usage errors */
    text = run_help(&ret, (const char *[]){"check-config", "--bogus", "-h", NULL});
    assert_int_equal(ret, 3);
    assert_non_null(strstr(text, "usage: authrelay check-config"));
    assert_non_null(strstr(text, "configuration OK"));
    free(text);

    assert_non_null(fp = open_memstream(&text, &size));
    relay_config_usage(fp, "serve");
    fclose(fp);
    for (i = 0; i != NCONTRACT; ++i)
        assert_non_null(strstr(text, contract[i][1]));
    free(text);
}

static void test_addresses(void **state)
{
    static const char *const bad[] = {
        "1.2.3.4",  "1.2.3.4:",       "1.2.3.4:0",         "1.2.3.4:65536",  "1.2.3.4:+80",   "1.2.3.4:80x",
        "1.2.3:80", "256.1.1.1:80",   "01.2.3.4:80",       "example.com:80", "::1:80",        "[::1]",
        "[::1]:",   "[::1]80",        "[fe80::1%eth0]:80", "[1.2.3.4]:80",   "[::1:80",       ":80",
        "",         "1.2.3.4:123456", " 1.2.3.4:80",       "localhost",      "localhost.:80", "*:80",
    };
    relay_config_t cfg;
    size_t i;

    (void)state;
    assert_int_equal(LOAD(&cfg, "--dev", "--listen", "192.0.2.1:1", "--admin-listen", "[2001:db8::5]:65535"), 0);
    assert_v4(&cfg.listen, "192.0.2.1", 1);
    {
        const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)&cfg.admin_listen.ss;
        struct in6_addr want;
        assert_int_equal(sin6->sin6_family, AF_INET6);
        assert_int_equal(ntohs(sin6->sin6_port), 65535);
        inet_pton(AF_INET6, "2001:db8::5", &want);
        assert_memory_equal(&sin6->sin6_addr, &want, sizeof(want));
        assert_string_equal(cfg.admin_listen.text, "[2001:db8::5]:65535");
    }
    assert_int_equal(relay_addr_is_loopback(&cfg.listen), 0);
    assert_int_equal(relay_addr_is_loopback(&cfg.admin_listen), 0);
    relay_config_free(&cfg);

    /* localhost is 127.0.0.1 and nothing else is looked up */
    assert_int_equal(LOAD(&cfg, "--dev", "--listen", "localhost:8000", "--admin-listen", "[::1]:9000"), 0);
    assert_v4(&cfg.listen, "127.0.0.1", 8000);
    assert_string_equal(cfg.listen.text, "localhost:8000");
    assert_int_equal(relay_addr_is_loopback(&cfg.listen), 1);
    assert_int_equal(relay_addr_is_loopback(&cfg.admin_listen), 1);
    relay_config_free(&cfg);

    for (i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        if (LOAD(&cfg, "--dev", "--listen", bad[i]) != 1)
            fail_msg("--listen %s was accepted", bad[i]);
        assert_err("authrelay: --listen: ");
        assert_int_equal(err_lines(), 1);
    }

    /* the two listeners must not clash */
    assert_int_equal(LOAD(&cfg, "--dev", "--listen", "127.0.0.1:9090"), 1);
    assert_err("authrelay: --listen 127.0.0.1:9090 and --admin-listen 127.0.0.1:9090 overlap");
    assert_int_equal(LOAD(&cfg, "--dev", "--listen", "0.0.0.0:9000", "--admin-listen", "127.0.0.1:9000"), 1);
    assert_err("overlap");
    assert_int_equal(LOAD(&cfg, "--dev", "--listen", "[::]:9000", "--admin-listen", "127.0.0.1:9000"), 1);
    assert_err("overlap");
    assert_int_equal(LOAD(&cfg, "--dev", "--listen", "127.0.0.2:9090"), 0);
    relay_config_free(&cfg);
    assert_int_equal(LOAD(&cfg, "--dev", "--listen", "127.0.0.1:9091"), 0);
    relay_config_free(&cfg);
}

static void test_public_url(void **state)
{
    static const char *const good[][2] = {
        {"https://relay.example.com", "https://relay.example.com"},
        {"https://relay.example.com/", "https://relay.example.com"},
        {"https://relay.example.com///", "https://relay.example.com"},
        {"https://relay.example.com:8443/oauth/", "https://relay.example.com:8443/oauth"},
        {"https://relay.example.com/a%20b/~x", "https://relay.example.com/a%20b/~x"},
        {"https://192.0.2.1", "https://192.0.2.1"},
        {"https://[2001:db8::1]:443/", "https://[2001:db8::1]:443"},
        {"http://localhost:8080", "http://localhost:8080"},
        {"http://127.0.0.1:8080/", "http://127.0.0.1:8080"},
        {"http://[::1]:8080", "http://[::1]:8080"},
    };
    static const char *const bad[][2] = {
        {"relay.example.com", "must be an absolute https:// URL"},
        {"ftp://relay.example.com", "must be an absolute https:// URL"},
        {"HTTPS://relay.example.com", "must be an absolute https:// URL"},
        {"https://relay.example.com/?x=1", "must have no query and no fragment"},
        {"https://relay.example.com#top", "must have no query and no fragment"},
        {"https://user:pw@relay.example.com", "must have no user name or password"},
        {"https://", "has no host"},
        {"https:///path", "has no host"},
        {"https://relay.example.com:0", "has an invalid port (1..65535)"},
        {"https://relay.example.com:99999", "has an invalid port"},
        {"https://relay_example.com", "has an invalid host name"},
        {"https://relay.example.com/a b", "has a character in its path that must be %-escaped"},
        {"https://relay.example.com/%zz", "has a bad %-escape"},
        {"https://[::1", "has an invalid [IPv6] address"},
        {"", "must not be empty"},
    };
    relay_config_t cfg;
    char longurl[1100], msg[128];
    size_t i;

    (void)state;
    for (i = 0; i != sizeof(good) / sizeof(good[0]); ++i) {
        if (LOAD(&cfg, "--dev", "--public-url", good[i][0]) != 0)
            fail_msg("--public-url %s: %s", good[i][0], last_err);
        assert_string_equal(cfg.public_url, good[i][1]);
        relay_config_free(&cfg);
    }
    for (i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        if (LOAD(&cfg, "--dev", "--public-url", bad[i][0]) != 1)
            fail_msg("--public-url %s was accepted", bad[i][0]);
        snprintf(msg, sizeof(msg), "authrelay: --public-url: %s", bad[i][1]);
        assert_err(msg);
        assert_int_equal(err_lines(), 1);
    }

    /* http: only with --plain or to a loopback host */
    assert_int_equal(LOAD(&cfg, "--dev", "--public-url", "http://relay.example.com"), 1);
    assert_err("authrelay: --public-url: http:// only with --plain or a loopback host");
    assert_int_equal(LOAD(&cfg, "--dev", "--plain", "--public-url", "http://relay.example.com"), 0);
    assert_string_equal(cfg.public_url, "http://relay.example.com");
    relay_config_free(&cfg);
    /* https behind a TLS-terminating proxy */
    assert_int_equal(LOAD(&cfg, "--plain", "--keys", keys, "--public-url", "https://relay.example.com"), 0);
    relay_config_free(&cfg);

    memset(longurl, 'a', sizeof(longurl));
    memcpy(longurl, "https://x.example/", 18);
    longurl[sizeof(longurl) - 1] = '\0';
    assert_int_equal(LOAD(&cfg, "--dev", "--public-url", longurl), 1);
    assert_err("--public-url: too long");
}

static void test_redis(void **state)
{
    static const char *const good[] = {
        "redis://localhost:6379",
        "redis://10.0.0.1:6379/0",
        "redis://:s3cret@redis.internal:6380/15",
        "redis://[::1]:6379",
        "unix:///run/redis/redis.sock",
        "redis://:p%40ss:w0rd@redis:6379",
        "redis://user:s3cret@localhost:6379",
        "redis://user:s3cret@[::1]:6379/1", /* ACL users */
    };
    static const char *const bad[][2] = {
        {"redis://localhost", "needs a port: host:port"},
        {"redis://localhost:0", "has an invalid port"},
        {"redis://user@localhost:6379", "has a user name but no password"},
        {"redis://:@localhost:6379", "has an empty password"},
        {"redis://:a b@localhost:6379", "the password must be printable ASCII"},
        {"redis://localhost:6379/x", "the database after '/' must be a number"},
        {"redis://localhost:6379/", "the database after '/' must be a number"},
        {"rediss://localhost:6379", "rediss:// (TLS) is not supported"},
        {"http://localhost:6379", "must be redis://[:password@]host:port[/db] or unix:///path"},
        {"unix://run/redis.sock", "unix:// needs an absolute path"},
        {"redis://bad_host:6379", "has an invalid host name"},
        {"redis://::1:6379", "has an IPv6 address outside brackets"},
    };
    relay_config_t cfg;
    char msg[128];
    size_t i;

    (void)state;
    for (i = 0; i != sizeof(good) / sizeof(good[0]); ++i) {
        if (LOAD(&cfg, "--dev", "--redis", good[i]) != 0)
            fail_msg("--redis %s: %s", good[i], last_err);
        assert_string_equal(cfg.redis, good[i]);
        relay_config_free(&cfg);
    }
    for (i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        if (LOAD(&cfg, "--dev", "--redis", bad[i][0]) != 1)
            fail_msg("--redis %s was accepted", bad[i][0]);
        snprintf(msg, sizeof(msg), "authrelay: --redis: %s", bad[i][1]);
        assert_err(msg);
        /* the URL may carry a password: never echoed */
        assert_false(err_has("s3cret"));
        assert_false(err_has(bad[i][0]));
    }
    {
        char path[200];
        memset(path, 'p', sizeof(path));
        memcpy(path, "unix:///", 8);
        path[sizeof(path) - 1] = '\0';
        assert_int_equal(LOAD(&cfg, "--dev", "--redis", path), 1);
        assert_err("--redis: the unix socket path is too long");
    }
    /* --redis-username: an ACL user, printable, with a Redis to log in to */
    assert_int_equal(LOAD(&cfg, "--dev", "--redis", "redis://localhost:6379", "--redis-username", "relay-acl"), 0);
    assert_string_equal(cfg.redis_username, "relay-acl");
    relay_config_free(&cfg);
    assert_int_equal(LOAD(&cfg, "--dev", "--redis", "redis://localhost:6379", "--redis-username", "a b"), 1);
    assert_err("--redis-username: must be printable ASCII without blanks");
    assert_int_equal(LOAD(&cfg, "--dev", "--redis-username", "relay-acl"), 1);
    assert_err("--redis-username needs --redis or --redis-sentinel");
}

static void test_sentinel(void **state)
{
    relay_config_t cfg;

    (void)state;
    assert_int_equal(LOAD(&cfg, "--dev", "--redis-sentinel", "s1:26379,s2:26379,[::1]:26379", "--redis-master", "mymaster",
                          "--redis-password-file", rpass),
                     0);
    assert_string_equal(cfg.redis_sentinel, "s1:26379,s2:26379,[::1]:26379");
    assert_string_equal(cfg.redis_master, "mymaster");
    assert_string_equal(cfg.redis_password_file, rpass);
    relay_config_free(&cfg);

    assert_int_equal(LOAD(&cfg, "--dev", "--redis-sentinel", "s1:26379"), 1);
    assert_err("authrelay: --redis-sentinel needs --redis-master NAME");
    assert_int_equal(LOAD(&cfg, "--dev", "--redis-master", "mymaster"), 1);
    assert_err("authrelay: --redis-master needs --redis-sentinel H:P,...");
    assert_int_equal(LOAD(&cfg, "--dev", "--redis", "redis://r:6379", "--redis-sentinel", "s1:26379", "--redis-master", "m"), 1);
    assert_err("authrelay: --redis and --redis-sentinel exclude each other");
    assert_int_equal(err_lines(), 1);

    assert_int_equal(LOAD(&cfg, "--dev", "--redis-sentinel", "s1:26379,,s2:26379", "--redis-master", "m"), 1);
    assert_err("--redis-sentinel: has an empty address");
    assert_int_equal(LOAD(&cfg, "--dev", "--redis-sentinel", "s1:26379,s2", "--redis-master", "m"), 1);
    assert_err("--redis-sentinel: needs a port");
    assert_int_equal(LOAD(&cfg, "--dev", "--redis-sentinel", "s1:26379,", "--redis-master", "m"), 1);
    assert_err("--redis-sentinel: has an empty address");
    {
        char many[17 * 9 + 1], *p = many;
        for (int i = 0; i != 17; ++i)
            p += snprintf(p, sizeof(many) - (size_t)(p - many), "%ss%c:26379", i != 0 ? "," : "", 'a' + i);
        assert_int_equal(LOAD(&cfg, "--dev", "--redis-sentinel", many, "--redis-master", "m"), 1);
        assert_err("--redis-sentinel: has too many addresses (at most 16)");
        many[16 * 9 - 1] = '\0'; /* 16 of them */
        assert_int_equal(LOAD(&cfg, "--dev", "--redis-sentinel", many, "--redis-master", "m"), 0);
        relay_config_free(&cfg);
    }
    assert_int_equal(LOAD(&cfg, "--dev", "--redis-sentinel", "s1:26379", "--redis-master", "my master"), 1);
    assert_err("--redis-master: may hold only");

    /* the password file */
    assert_int_equal(LOAD(&cfg, "--dev", "--redis-password-file", rpass), 1);
    assert_err("authrelay: --redis-password-file needs --redis or --redis-sentinel");
    assert_int_equal(LOAD(&cfg, "--dev", "--redis", "redis://:pw@r:6379", "--redis-password-file", rpass), 1);
    assert_err("--redis carries a password and --redis-password-file is given");
    assert_int_equal(LOAD(&cfg, "--dev", "--redis", "redis://r:6379", "--redis-password-file", "/nonexistent/pw"), 1);
    assert_err("authrelay: --redis-password-file: /nonexistent/pw: No such file or directory");
    assert_int_equal(LOAD(&cfg, "--dev", "--redis", "redis://r:6379", "--redis-password-file", rpass), 0);
    relay_config_free(&cfg);
}

static void test_allow_as(void **state)
{
    static const char *const bad[] = {"auth.example.com:443", "bad_host.example",  "-a.example", "a-.example", "a..example",
                                      "a.example.",           "https://a.example", "1.2.3",      "[::1",       "é.example"};
    relay_config_t cfg;
    char many[65 * 16], *p;
    size_t i;

    (void)state;
    assert_int_equal(LOAD(&cfg, "--dev", "--allow-as", "Auth.Atlassian.COM", "--allow-as", "b.example,C.example",
                          "--allow-as=auth.atlassian.com", "--allow-as", "[::1]"),
                     0);
    assert_int_equal(cfg.allow_as_count, 4);
    assert_string_equal(cfg.allow_as[0], "auth.atlassian.com");
    assert_string_equal(cfg.allow_as[1], "b.example");
    assert_string_equal(cfg.allow_as[2], "c.example");
    assert_string_equal(cfg.allow_as[3], "[::1]");
    relay_config_free(&cfg);

    for (i = 0; i != sizeof(bad) / sizeof(bad[0]); ++i) {
        if (LOAD(&cfg, "--dev", "--allow-as", bad[i]) != 1)
            fail_msg("--allow-as %s was accepted", bad[i]);
        assert_err("authrelay: --allow-as: invalid host");
    }
    /* wildcards: "*." and a suffix of two labels or more that is not a public suffix of the ICANN section */
    assert_int_equal(LOAD(&cfg, "--dev", "--allow-as", "*.Okta.com", "--allow-as", "*.my.salesforce.com"), 0);
    assert_int_equal(cfg.allow_as_count, 2);
    assert_string_equal(cfg.allow_as[0], "*.okta.com");
    assert_string_equal(cfg.allow_as[1], "*.my.salesforce.com");
    relay_config_free(&cfg);
    static const char *const too_wide[] = {"*.example", "*.com", "*.co.uk", "*.", "*", "**.okta.com", "*.okta.com:443", "a.*.com"};
    for (i = 0; i != sizeof(too_wide) / sizeof(too_wide[0]); ++i) {
        if (LOAD(&cfg, "--dev", "--allow-as", too_wide[i]) != 1)
            fail_msg("--allow-as %s was accepted", too_wide[i]);
        assert_err("authrelay: --allow-as: invalid");
    }
    assert_int_equal(LOAD(&cfg, "--dev", "--allow-as", "a.example,,b.example"), 1);
    assert_err("--allow-as: empty host name");
    assert_int_equal(LOAD(&cfg, "--dev", "--allow-as="), 1);
    assert_err("--allow-as: empty host name");

    /* at most RELAY_ALLOW_AS_MAX */
    for (p = many, i = 0; i != RELAY_ALLOW_AS_MAX; ++i)
        p += snprintf(p, 16, "%sh%zu.example", i == 0 ? "" : ",", i);
    assert_int_equal(LOAD(&cfg, "--dev", "--allow-as", many), 0);
    assert_int_equal(cfg.allow_as_count, RELAY_ALLOW_AS_MAX);
    relay_config_free(&cfg);
    snprintf(p, 16, ",h%d.example", RELAY_ALLOW_AS_MAX);
    assert_int_equal(LOAD(&cfg, "--dev", "--allow-as", many), 1);
    assert_err("authrelay: --allow-as: more than 64 hosts");
    assert_int_equal(err_lines(), 1);
}

static void test_tls_and_files(void **state)
{
    relay_config_t cfg;

    (void)state;
    assert_int_equal(LOAD(&cfg, "--keys", keys, "--tls-cert", cert, "--public-url", "https://r.example"), 1);
    assert_err("authrelay: --tls-cert and --tls-key go together: give both or neither");
    assert_int_equal(LOAD(&cfg, "--keys", keys, "--tls-key", key, "--public-url", "https://r.example"), 1);
    assert_err("--tls-cert and --tls-key go together");
    assert_int_equal(LOAD(&cfg, "--keys", keys, "--public-url", "https://r.example"), 1);
    assert_err("authrelay: --tls-cert and --tls-key are required");
    assert_int_equal(LOAD(&cfg, "--plain", PROD), 1);
    assert_err("--plain serves without TLS");
    assert_int_equal(LOAD(&cfg, "--tls-cert", "/nonexistent/cert.pem", "--tls-key", tmpdir, "--keys", "/nonexistent/keys",
                          "--public-url", "https://r.example"),
                     1);
    assert_err("authrelay: --tls-cert: /nonexistent/cert.pem: No such file or directory");
    assert_err("--tls-key: ");
    assert_err(": not a regular file");
    assert_err("authrelay: --keys: /nonexistent/keys: No such file or directory");
    assert_int_equal(err_lines(), 3);
    assert_int_equal(LOAD(&cfg, "--dev", "--keys", ""), 1);
    assert_err("authrelay: --keys: must not be empty");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults, test_setup),        cmocka_unit_test_setup(test_default_public_url, test_setup),
        cmocka_unit_test_setup(test_dev_defaults, test_setup),    cmocka_unit_test_setup(test_dev_overridden, test_setup),
        cmocka_unit_test_setup(test_env_twins, test_setup),       cmocka_unit_test_setup(test_precedence, test_setup),
        cmocka_unit_test_setup(test_json_every_type, test_setup), cmocka_unit_test_setup(test_json_errors, test_setup),
        cmocka_unit_test_setup(test_bounds, test_setup),          cmocka_unit_test_setup(test_all_errors_at_once, test_setup),
        cmocka_unit_test_setup(test_usage_errors, test_setup),    cmocka_unit_test_setup(test_help, test_setup),
        cmocka_unit_test_setup(test_addresses, test_setup),       cmocka_unit_test_setup(test_public_url, test_setup),
        cmocka_unit_test_setup(test_redis, test_setup),           cmocka_unit_test_setup(test_sentinel, test_setup),
        cmocka_unit_test_setup(test_allow_as, test_setup),        cmocka_unit_test_setup(test_tls_and_files, test_setup),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

/* fuzz_config.c: libFuzzer target for the JSON config file (relay_config_load_json, relay/config.c) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                                                \
    do {                                                                                                                           \
        if (!(cond))                                                                                                               \
            abort();                                                                                                               \
    } while (0)

#define PREFIX "authrelay: "
#define REDIS_PREFIX "authrelay: (config text): redis: "

/* s is a NUL-terminated string of at most max bytes, no control character */
static int text_ok(const char *s, size_t max)
{
    size_t n = strlen(s);

    for (size_t i = 0; i != n; ++i)
        if ((unsigned char)s[i] < 0x20)
            return 0;
    return n >= 1 && n <= max;
}

static void check_list(char *const *list, size_t count, size_t max)
{
    CHECK(count <= max);
    for (size_t i = 0; i != count; ++i)
        CHECK(list[i] != NULL && text_ok(list[i], 4096));
}

/* what a configuration that passed holds: every bound of the option table, every string set and well formed */
static void check_ok(const relay_config_t *cfg)
{
    CHECK(cfg->listen.len != 0 && cfg->admin_listen.len != 0 && memchr(cfg->listen.text, '\0', sizeof(cfg->listen.text)));
    CHECK(cfg->listen.ss.ss_family == AF_INET || cfg->listen.ss.ss_family == AF_INET6);
    CHECK(cfg->session_ttl_max >= 60 && cfg->session_ttl_max <= 86400);
    CHECK(cfg->wait_max <= 300 && cfg->threads >= 1 && cfg->threads <= 256 && cfg->shutdown_grace <= 3600);
    CHECK(cfg->dev == 0 || cfg->dev == 1);
    CHECK(cfg->plain == 0 || cfg->plain == 1);
    CHECK(cfg->public_url != NULL && (strncmp(cfg->public_url, "https://", 8) == 0 || strncmp(cfg->public_url, "http://", 7) == 0));
    CHECK((cfg->tls_cert != NULL) == (cfg->tls_key != NULL));
    CHECK(cfg->keys != NULL || cfg->dev);
    CHECK(cfg->redis == NULL || cfg->redis_sentinel == NULL);
    CHECK((cfg->redis_sentinel != NULL) == (cfg->redis_master != NULL));
    CHECK(cfg->config_file == NULL);
    check_list(cfg->allow_as, cfg->allow_as_count, RELAY_ALLOW_AS_MAX);
    check_list(cfg->allow_client_id, cfg->allow_client_id_count, RELAY_ALLOW_CLIENT_ID_MAX);
    check_list(cfg->trusted_proxy, cfg->trusted_proxy_count, RELAY_TRUSTED_PROXY_MAX);
    for (size_t i = 0; i != cfg->allow_as_count; ++i)
        for (const char *p = cfg->allow_as[i]; *p != '\0'; ++p)
            CHECK(!(*p >= 'A' && *p <= 'Z')); /* lower-cased */
}

/* the password of the text's "redis" URL (redis://[user]:password@host...), when it has one of 8 bytes or more: a copy
 * (caller frees), or NULL */
static char *redis_password(const char *text, size_t size)
{
    json_tokener *tok = json_tokener_new();
    json_object *root = NULL, *v = NULL;
    const char *url, *colon, *at;
    char *pw = NULL;

    if (tok == NULL || size > 65536)
        goto Exit;
    if ((root = json_tokener_parse_ex(tok, text, (int)size)) == NULL || !json_object_object_get_ex(root, "redis", &v) ||
        !json_object_is_type(v, json_type_string))
        goto Exit;
    url = json_object_get_string(v);
    if (strncmp(url, "redis://", 8) != 0 || (at = strrchr(url, '@')) == NULL ||
        (colon = memchr(url + 8, ':', (size_t)(at - url - 8))) == NULL || at - colon - 1 < 8)
        goto Exit;
    pw = strndup(colon + 1, (size_t)(at - colon - 1));
Exit:
    json_object_put(root);
    if (tok != NULL)
        json_tokener_free(tok);
    return pw;
}

/* the error text: whole lines, each "authrelay: ..."; a Redis URL (it may hold a password) never echoed, neither quoted
 * (as other values are) nor its password (taken from the text, parsed a second time, only when there is a redis line) */
static size_t check_errors(const char *err, size_t len, const char *text, size_t size)
{
    size_t lines = 0, i = 0;
    char *password = NULL;
    int parsed = 0;

    CHECK(memchr(err, '\0', len) == NULL);
    while (i < len) {
        const char *nl = memchr(err + i, '\n', len - i), *line = err + i;
        size_t n;
        CHECK(nl != NULL);
        n = (size_t)(nl - line);
        CHECK(n > sizeof(PREFIX) - 1 && memcmp(line, PREFIX, sizeof(PREFIX) - 1) == 0);
        if (n >= sizeof(REDIS_PREFIX) - 1 && memcmp(line, REDIS_PREFIX, sizeof(REDIS_PREFIX) - 1) == 0) {
            if (!parsed) {
                password = redis_password(text, size);
                parsed = 1;
            }
            /* a password is looked for only when it holds a character none of the relay's fixed texts has: a password
             * such as " (config text): redis: " is rightly never echoed, yet it occurs in every redis line's prefix */
            CHECK(memchr(line, '"', n) == NULL &&
                  (password == NULL || strpbrk(password, "~^`$") == NULL || memmem(line, n, password, strlen(password)) == NULL));
        }
        ++lines;
        i += n + 1;
    }
    free(password);
    return lines;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const relay_config_t zero;
    relay_config_t cfg, again;
    char *text = malloc(size != 0 ? size : 1), *err = NULL, *err2 = NULL;
    size_t errlen = 0, errlen2 = 0;
    FILE *ef = NULL, *ef2 = NULL;
    relay_config_status_t r, r2;

    if (text == NULL || (ef = open_memstream(&err, &errlen)) == NULL || (ef2 = open_memstream(&err2, &errlen2)) == NULL)
        goto Exit;
    /* a copy of exactly the input's size (not NUL-terminated), so that ASan sees any read past it */
    if (size != 0)
        memcpy(text, data, size);
    r = relay_config_load_json(&cfg, text, size, ef);
    CHECK(fflush(ef) == 0);
    CHECK(r == RELAY_CONFIG_OK || r == RELAY_CONFIG_INVALID);
    if (r == RELAY_CONFIG_OK) {
        CHECK(errlen == 0);
        check_ok(&cfg);
    } else {
        /* every problem reported, and nothing left behind */
        CHECK(check_errors(err, errlen, text, size) >= 1);
        CHECK(memcmp(&cfg, &zero, sizeof(cfg)) == 0);
    }
    /* the same text loads the same way again: checked for a text whose size is a multiple of 4 (the size chooses, not a
     * byte, which in JSON would tie it to one kind of text), so that the others load once */
    if (size % 4 != 0) {
        if (r == RELAY_CONFIG_OK) {
            relay_config_free(&cfg);
            CHECK(memcmp(&cfg, &zero, sizeof(cfg)) == 0);
        }
        goto Exit;
    }
    r2 = relay_config_load_json(&again, text, size, ef2);
    CHECK(fflush(ef2) == 0);
    CHECK(r2 == r && errlen2 == errlen && memcmp(err, err2, errlen) == 0);
    if (r == RELAY_CONFIG_OK) {
        CHECK(again.wait_max == cfg.wait_max && again.listen.len == cfg.listen.len &&
              memcmp(&again.listen.ss, &cfg.listen.ss, cfg.listen.len) == 0 && strcmp(again.public_url, cfg.public_url) == 0 &&
              again.allow_as_count == cfg.allow_as_count);
        relay_config_free(&again);
        relay_config_free(&cfg);
        CHECK(memcmp(&cfg, &zero, sizeof(cfg)) == 0);
    }

Exit:
    if (ef != NULL)
        fclose(ef);
    if (ef2 != NULL)
        fclose(ef2);
    free(err);
    free(err2);
    free(text);
    return 0;
}

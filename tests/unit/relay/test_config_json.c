/* test_config_json.c: unit tests of relay_config_load_json (relay/config.c), the config file's checks from a JSON text */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "config.h"

/* loads text (its strlen) and returns the status; *err gets the error text (caller frees) */
static relay_config_status_t load(relay_config_t *cfg, const char *text, char **err)
{
    size_t len = 0;
    FILE *f = open_memstream(err, &len);
    relay_config_status_t r;

    assert_non_null(f);
    r = relay_config_load_json(cfg, text, strlen(text), f);
    fclose(f);
    return r;
}

static void assert_zeroed(const relay_config_t *cfg)
{
    static const relay_config_t zero;
    assert_memory_equal(cfg, &zero, sizeof(zero));
}

static void test_dev_defaults(void **unused)
{
    (void)unused;
    relay_config_t cfg;
    char *err = NULL;

    assert_int_equal(load(&cfg, "{\"dev\": true, \"wait-max\": 12, \"allow-as\": [\"Auth.Atlassian.com\"]}", &err),
                     RELAY_CONFIG_OK);
    assert_string_equal(err, "");
    assert_true(cfg.dev);
    assert_int_equal(cfg.wait_max, 12);
    assert_string_equal(cfg.listen.text, "127.0.0.1:8443");
    assert_string_equal(cfg.public_url, "https://localhost:8443");
    assert_int_equal(cfg.allow_as_count, 1);
    assert_string_equal(cfg.allow_as[0], "auth.atlassian.com");
    assert_null(cfg.config_file);
    relay_config_free(&cfg);
    free(err);
}

/* not NUL-terminated: only len bytes are read */
static void test_length(void **unused)
{
    (void)unused;
    static const char text[] = "{\"dev\": true}garbage";
    relay_config_t cfg;
    char *err = NULL;
    size_t errlen = 0;
    FILE *f = open_memstream(&err, &errlen);

    assert_non_null(f);
    assert_int_equal(relay_config_load_json(&cfg, text, 13, f), RELAY_CONFIG_OK);
    relay_config_free(&cfg);
    assert_int_equal(relay_config_load_json(&cfg, text, sizeof(text) - 1, f), RELAY_CONFIG_INVALID);
    fclose(f);
    assert_non_null(strstr(err, "authrelay: (config text): invalid JSON at line 1, column 14"));
    assert_zeroed(&cfg);
    free(err);
}

/* every problem, one line each, and nothing left behind */
static void test_errors(void **unused)
{
    (void)unused;
    relay_config_t cfg;
    char *err = NULL;

    assert_int_equal(load(&cfg, "{\"dev\": true, \"wait-max\": 301, \"config\": \"x.json\", \"log-level\": \"trace\"}", &err),
                     RELAY_CONFIG_INVALID);
    assert_non_null(strstr(err, "authrelay: (config text): wait-max: must be between 0 and 300\n"));
    assert_non_null(strstr(err, "authrelay: (config text): unknown key \"config\""));
    assert_non_null(strstr(err, "authrelay: (config text): log-level: must be debug, info, warn or error, not \"trace\"\n"));
    assert_zeroed(&cfg);
    free(err);
    assert_int_equal(load(&cfg, "[1]", &err), RELAY_CONFIG_INVALID);
    assert_non_null(strstr(err, "must hold one JSON object"));
    assert_zeroed(&cfg);
    free(err);
}

/*
 * Found by fuzz_config: a path with a control character was echoed as given ("--tls-key: /e<LF>c/key.pem: No such file
 * ..."), one problem on two lines (and a terminal escape would reach the terminal). Such a value is now refused.
 */
static void test_control_characters(void **unused)
{
    (void)unused;
    static const char *const texts[] = {
        "{\"dev\": true, \"tls-cert\": \"/etc/c.pem\", \"tls-key\": \"/e\\nc/key.pem\"}",
        "{\"dev\": true, \"keys\": \"/etc/\\u001b[2Jkeys.json\"}",
        "{\"dev\": true, \"redis\": \"redis://127.0.0.1:6379\\t\"}",
        "{\"dev\": true, \"public-url\": \"https://relay.example.com/\\u007f\"}",
    };
    relay_config_t cfg;
    char *err = NULL;

    for (size_t i = 0; i != sizeof(texts) / sizeof(texts[0]); ++i) {
        assert_int_equal(load(&cfg, texts[i], &err), RELAY_CONFIG_INVALID);
        assert_non_null(strstr(err, ": must not contain a control character\n"));
        for (const char *p = err; *p != '\0'; ++p)
            assert_true((unsigned char)*p >= 0x20 || *p == '\n');
        for (const char *line = err; *line != '\0'; line = strchr(line, '\n') + 1)
            assert_memory_equal(line, "authrelay: ", 11);
        assert_zeroed(&cfg);
        free(err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dev_defaults),
        cmocka_unit_test(test_length),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_control_characters),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

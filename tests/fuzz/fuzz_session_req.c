/* fuzz_session_req.c: libFuzzer target for the POST /v1/sessions body validation (rly_session_req_parse) */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "session_req.h"
#include "url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                                                \
    do {                                                                                                                           \
        if (!(cond))                                                                                                               \
            abort();                                                                                                               \
    } while (0)

static const char *const allow_list[] = {"auth.atlassian.com", "localhost", "[::1]", "*.okta.com"};
static const char *const clients[] = {"qorus-client"};
/* dev mode on so that the http-to-loopback paths are reached too; version-1 requests allowed, so both shapes are reached */
static const rly_session_policy_t policy = {1, 3600, allow_list, sizeof(allow_list) / sizeof(allow_list[0]), clients, 1, 1};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rly_session_req_t req;
    const char *errstr = NULL;
    const char *err2 = NULL;
    size_t i;

    switch (rly_session_req_parse((const char *)data, size, &policy, &req, &errstr)) {
    case RLY_SREQ_OK:
        CHECK(size <= RLY_SESSION_BODY_MAX);
        CHECK(memchr(req.as_id, '\0', sizeof(req.as_id)) != NULL);
        for (i = 0; i < policy.allow_as_count; i++)
            if (strcmp(req.as_id, allow_list[i]) == 0)
                break;
        CHECK(i < policy.allow_as_count);
        CHECK(req.ttl >= RLY_TTL_MIN && req.ttl <= policy.ttl_max);
        CHECK(req.has_seal_key == 0 || req.has_seal_key == 1);
        CHECK(req.return_uri_len <= RLY_RETURN_URI_MAX && req.return_uri[req.return_uri_len] == '\0');
        CHECK(strlen(req.return_uri) == req.return_uri_len);
        /* what was accepted passes the URL check on its own again */
        if (req.return_uri_len != 0)
            CHECK(rly_url_check_return(req.return_uri, req.return_uri_len, &err2) == 0);
        break;
    case RLY_SREQ_INVALID:
    case RLY_SREQ_NOT_ALLOWED:
    case RLY_SREQ_CLIENT_NOT_ALLOWED:
        CHECK(errstr != NULL && errstr[0] != '\0');
        CHECK(req.as_id[0] == '\0' && req.return_uri_len == 0 && req.has_seal_key == 0);
        break;
    default:
        abort();
    }
    return 0;
}

/* meta.c: encryption of a session's meta (return_uri, seal key) and of its result, bound to the session id */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include "meta.h"
#include "seal.h"

/* the AAD text and its length, or 0 when it does not fit (a session id text is 22 characters; never a truncated AAD,
 * never a length past the buffer) */
static size_t aad(char *buf, size_t cap, const char *what, const char *sid_text)
{
    size_t wlen = strlen(what), slen = strlen(sid_text), n = sizeof("authrelay ") - 1 + wlen + 1 + slen;
    if (n >= cap)
        return 0;
    memcpy(buf, "authrelay ", sizeof("authrelay ") - 1);
    memcpy(buf + sizeof("authrelay ") - 1, what, wlen);
    buf[sizeof("authrelay ") - 1 + wlen] = ' ';
    memcpy(buf + sizeof("authrelay ") + wlen, sid_text, slen + 1);
    return n;
}

long relay_meta_seal(const rly_keyring_t *kr, const char *sid_text, const rly_session_req_t *sreq, uint8_t *out)
{
    uint8_t pt[1 + 32 + RLY_RETURN_URI_MAX];
    size_t n = 0;
    char a[64];
    size_t alen = aad(a, sizeof(a), "meta", sid_text);
    if (alen == 0)
        return -1;
    pt[n++] = sreq->has_seal_key ? 1 : 0;
    if (sreq->has_seal_key) {
        memcpy(pt + n, sreq->seal_key, 32);
        n += 32;
    }
    memcpy(pt + n, sreq->return_uri, sreq->return_uri_len);
    n += sreq->return_uri_len;
    return rly_data_encrypt(kr, a, alen, pt, n, out);
}

int relay_meta_open(const rly_keyring_t *kr, const char *sid_text, const uint8_t *in, size_t len, relay_meta_t *meta)
{
    uint8_t pt[RELAY_META_MAX];
    char a[64];
    size_t alen = aad(a, sizeof(a), "meta", sid_text);
    if (len > sizeof(pt) || alen == 0)
        return -1;
    long n = rly_data_decrypt(kr, a, alen, in, len, pt);
    int ret = -1;
    if (n < 1)
        return -1;
    size_t off = 1;
    /* the fields only: return_uri is 2 KiB, and only its first return_uri_len bytes are ever read */
    meta->has_seal_key = 0;
    meta->return_uri_len = 0;
    meta->return_uri[0] = '\0';
    if (pt[0] == 1) {
        if (n < 33)
            goto Exit;
        meta->has_seal_key = 1;
        memcpy(meta->seal_key, pt + 1, 32);
        off = 33;
    } else if (pt[0] != 0) {
        goto Exit;
    }
    if ((size_t)n - off > RLY_RETURN_URI_MAX)
        goto Exit;
    meta->return_uri_len = (size_t)n - off;
    memcpy(meta->return_uri, pt + off, meta->return_uri_len);
    meta->return_uri[meta->return_uri_len] = '\0';
    ret = 0;
Exit:
    OPENSSL_cleanse(pt, (size_t)n);
    if (ret != 0)
        relay_meta_wipe(meta);
    return ret;
}

void relay_meta_wipe(relay_meta_t *meta)
{
    OPENSSL_cleanse(meta->seal_key, sizeof(meta->seal_key));
    OPENSSL_cleanse(meta->return_uri,
                    meta->return_uri_len < sizeof(meta->return_uri) ? meta->return_uri_len : sizeof(meta->return_uri));
    meta->has_seal_key = 0;
    meta->return_uri_len = 0;
}

uint8_t *relay_result_seal(const rly_keyring_t *kr, const char *sid_text, const relay_meta_t *meta, const char *json, size_t len,
                           size_t *outlen)
{
    uint8_t *blob = NULL;
    if (meta->has_seal_key) {
        /* sealed to the instance: the relay forgets the plaintext; the AAD is the session id (protocol.md) */
        char *sealed = rly_seal(meta->seal_key, sid_text, strlen(sid_text), (const uint8_t *)json, len, NULL, NULL);
        if (sealed == NULL)
            return NULL;
        size_t n = strlen(sealed);
        if ((blob = malloc(1 + n)) != NULL) {
            blob[0] = 'S';
            memcpy(blob + 1, sealed, n);
            *outlen = 1 + n;
        }
        free(sealed);
        return blob;
    }
    char a[64];
    size_t alen = aad(a, sizeof(a), "result", sid_text);
    if (alen == 0 || (blob = malloc(1 + len + RLY_DATA_OVERHEAD)) == NULL)
        return NULL;
    blob[0] = 'D';
    long n = rly_data_encrypt(kr, a, alen, (const uint8_t *)json, len, blob + 1);
    if (n < 0) {
        free(blob);
        return NULL;
    }
    *outlen = 1 + (size_t)n;
    return blob;
}

char *relay_result_open(const rly_keyring_t *kr, const char *sid_text, const uint8_t *blob, size_t len, size_t *outlen)
{
    if (len < 2)
        return NULL;
    if (blob[0] == 'S') {
        json_object *o = json_object_new_object();
        json_object_object_add(o, "status", json_object_new_string("sealed"));
        json_object_object_add(o, "sealed", json_object_new_string_len((const char *)blob + 1, (int)(len - 1)));
        size_t n;
        const char *s = json_object_to_json_string_length(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
        char *r = strndup(s, n);
        json_object_put(o);
        if (r != NULL)
            *outlen = n;
        return r;
    }
    if (blob[0] != 'D')
        return NULL;
    char a[64];
    size_t alen = aad(a, sizeof(a), "result", sid_text);
    char *pt = alen != 0 ? malloc(len + 1) : NULL;
    if (pt == NULL)
        return NULL;
    long n = rly_data_decrypt(kr, a, alen, blob + 1, len - 1, (uint8_t *)pt);
    if (n < 0) {
        free(pt);
        return NULL;
    }
    pt[n] = '\0';
    *outlen = (size_t)n;
    return pt;
}

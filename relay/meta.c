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

/* a length-prefixed text: n (1 or 2 bytes, big-endian) then the bytes */
static void put_text(uint8_t *pt, size_t *off, const char *text, size_t len, int two)
{
    if (two)
        pt[(*off)++] = (uint8_t)(len >> 8);
    pt[(*off)++] = (uint8_t)len;
    memcpy(pt + *off, text, len);
    *off += len;
}

/* reads a length-prefixed text into dst (capacity cap, NUL-terminated); 0 / -1 */
static int get_text(const uint8_t *pt, size_t n, size_t *off, char *dst, size_t cap, size_t *len, int two)
{
    size_t l;
    if (*off + (two ? 2 : 1) > n)
        return -1;
    l = two ? ((size_t)pt[*off] << 8 | pt[*off + 1]) : pt[*off];
    *off += two ? 2 : 1;
    if (l >= cap || *off + l > n)
        return -1;
    memcpy(dst, pt + *off, l);
    dst[l] = '\0';
    *off += l;
    *len = l;
    return 0;
}

#define META_SEAL_KEY 1
#define META_BOUND 2

long relay_meta_seal(const rly_keyring_t *kr, const char *sid_text, const rly_session_req_t *sreq, uint8_t *out)
{
    uint8_t pt[RELAY_META_MAX - RLY_DATA_OVERHEAD];
    size_t n = 0;
    char a[64];
    size_t alen = aad(a, sizeof(a), "meta", sid_text);
    if (alen == 0)
        return -1;
    pt[n++] = (sreq->has_seal_key ? META_SEAL_KEY : 0) | (sreq->bound ? META_BOUND : 0);
    if (sreq->has_seal_key) {
        memcpy(pt + n, sreq->seal_key, 32);
        n += 32;
    }
    if (!sreq->bound) {
        /* version 1: the return_uri fills the rest */
        memcpy(pt + n, sreq->return_uri, sreq->return_uri_len);
        n += sreq->return_uri_len;
    } else {
        put_text(pt, &n, sreq->return_uri, sreq->return_uri_len, 1);
        put_text(pt, &n, sreq->authorization_server, sreq->authorization_server_len, 1);
        put_text(pt, &n, sreq->label, sreq->label_len, 0);
        pt[n++] = (uint8_t)sreq->nparams;
        for (size_t i = 0; i != sreq->nparams; ++i) {
            put_text(pt, &n, sreq->params[i].name, sreq->params[i].name_len, 0);
            put_text(pt, &n, sreq->params[i].value, sreq->params[i].value_len, 1);
        }
    }
    long ret = rly_data_encrypt(kr, a, alen, pt, n, out);
    OPENSSL_cleanse(pt, n);
    return ret;
}

/* the 1.1 members after the seal key; 0 / -1 */
static int open_bound(const uint8_t *pt, size_t n, size_t off, relay_meta_t *meta)
{
    size_t np, used = 0;
    if (get_text(pt, n, &off, meta->return_uri, sizeof(meta->return_uri), &meta->return_uri_len, 1) != 0 ||
        get_text(pt, n, &off, meta->authorization_server, sizeof(meta->authorization_server), &meta->authorization_server_len, 1) !=
            0 ||
        get_text(pt, n, &off, meta->label, sizeof(meta->label), &meta->label_len, 0) != 0 || off == n)
        return -1;
    if ((np = pt[off++]) > RLY_AUTHORIZE_PARAMS_COUNT_MAX)
        return -1;
    for (size_t i = 0; i != np; ++i) {
        rly_param_t *p = &meta->params[i];
        char *name = meta->params_buf + used;
        if (get_text(pt, n, &off, name, sizeof(meta->params_buf) - used, &p->name_len, 0) != 0)
            return -1;
        used += p->name_len + 1;
        char *value = meta->params_buf + used;
        if (get_text(pt, n, &off, value, sizeof(meta->params_buf) - used, &p->value_len, 1) != 0)
            return -1;
        used += p->value_len + 1;
        p->name = name;
        p->value = value;
        meta->nparams = i + 1;
        meta->params_buf_len = used;
    }
    return off == n ? 0 : -1;
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
    /* the fields only: the texts are KiBs, and only their first bytes are ever read */
    meta->has_seal_key = 0;
    meta->bound = 0;
    meta->return_uri_len = meta->authorization_server_len = meta->label_len = meta->nparams = meta->params_buf_len = 0;
    meta->return_uri[0] = meta->authorization_server[0] = meta->label[0] = '\0';
    if ((pt[0] & ~(META_SEAL_KEY | META_BOUND)) != 0)
        goto Exit;
    if ((pt[0] & META_SEAL_KEY) != 0) {
        if (n < 33)
            goto Exit;
        meta->has_seal_key = 1;
        memcpy(meta->seal_key, pt + 1, 32);
        off = 33;
    }
    if ((pt[0] & META_BOUND) != 0) {
        meta->bound = 1;
        if (open_bound(pt, (size_t)n, off, meta) != 0)
            goto Exit;
    } else {
        if ((size_t)n - off > RLY_RETURN_URI_MAX)
            goto Exit;
        meta->return_uri_len = (size_t)n - off;
        memcpy(meta->return_uri, pt + off, meta->return_uri_len);
        meta->return_uri[meta->return_uri_len] = '\0';
    }
    ret = 0;
Exit:
    OPENSSL_cleanse(pt, (size_t)n);
    if (ret != 0)
        relay_meta_wipe(meta);
    return ret;
}

static void wipe_text(char *text, size_t len, size_t cap)
{
    OPENSSL_cleanse(text, len < cap ? len : cap);
}

void relay_meta_wipe(relay_meta_t *meta)
{
    OPENSSL_cleanse(meta->seal_key, sizeof(meta->seal_key));
    wipe_text(meta->return_uri, meta->return_uri_len, sizeof(meta->return_uri));
    wipe_text(meta->authorization_server, meta->authorization_server_len, sizeof(meta->authorization_server));
    wipe_text(meta->label, meta->label_len, sizeof(meta->label));
    wipe_text(meta->params_buf, meta->params_buf_len, sizeof(meta->params_buf));
    meta->has_seal_key = meta->bound = 0;
    meta->return_uri_len = meta->authorization_server_len = meta->label_len = meta->nparams = meta->params_buf_len = 0;
}

int relay_start_ref_seal(const rly_keyring_t *kr, const uint8_t token_hash[32], const uint8_t sid[RLY_SESSION_ID_BYTES],
                         uint8_t out[RELAY_START_REF_LEN])
{
    char a[16 + 32] = "authrelay start ";
    memcpy(a + 16, token_hash, 32);
    return rly_data_encrypt(kr, a, sizeof(a), sid, RLY_SESSION_ID_BYTES, out) == RELAY_START_REF_LEN ? 0 : -1;
}

int relay_start_ref_open(const rly_keyring_t *kr, const uint8_t token_hash[32], const uint8_t *ref, size_t len,
                         uint8_t sid[RLY_SESSION_ID_BYTES])
{
    char a[16 + 32] = "authrelay start ";
    uint8_t pt[RELAY_START_REF_LEN];
    memcpy(a + 16, token_hash, 32);
    if (len != RELAY_START_REF_LEN || rly_data_decrypt(kr, a, sizeof(a), ref, len, pt) != RLY_SESSION_ID_BYTES)
        return -1;
    memcpy(sid, pt, RLY_SESSION_ID_BYTES);
    OPENSSL_cleanse(pt, sizeof(pt));
    return 0;
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

/* tls.c: the public listener's SSL_CTX: PEM files, or an ephemeral self-signed certificate for --dev; TLS 1.3 session
 * tickets under keys derived from the key file */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <h2o.h>
#include "tls.h"

static const h2o_iovec_t alpn_protocols[] = {{H2O_STRLIT("h2")}, {H2O_STRLIT("http/1.1")}, {NULL, 0}};

static void openssl_error(char *err, size_t errlen, const char *what)
{
    unsigned long e = ERR_get_error();
    char buf[256] = "";
    if (e != 0)
        ERR_error_string_n(e, buf, sizeof(buf));
    snprintf(err, errlen, "%s%s%s", what, e != 0 ? ": " : "", buf);
    ERR_clear_error();
}

/*
 * Session tickets (docs/operations.md, section 10, "TLS session resumption"). A ticket is the TLS session encrypted
 * (AES-256-CBC, HMAC-SHA256, OpenSSL's format) under a key derived from the key file for the hour (rly_ticket_key):
 * no session is stored server-side (SSL_SESS_CACHE_OFF), every replica with the same key file opens every replica's
 * tickets, and nothing about a ticket is logged. New tickets: keys[0] of the current ring, current period. Accepted:
 * any key of the ring (a ticket from before a rotation, or from a replica not yet reloaded, still resumes), for the
 * previous, current or next period (an hour's boundary, replica clocks a little apart); any but the current key is
 * renewed. OpenSSL refuses a session older than TICKET_LIFETIME whatever its key.
 */
#define TICKET_LIFETIME 3600 /* seconds: the session timeout and the lifetime hint a ticket carries */
#define TICKET_NAME_LEN 16

typedef struct st_ticket_secret_t {
    uint8_t name[TICKET_NAME_LEN], aes[32], hmac[32];
} ticket_secret_t;

/* the periods derived for each ring key: the current one, the one before, the one after */
static const int ticket_offsets[] = {0, -1, 1};
#define TICKET_OFFSETS (sizeof(ticket_offsets) / sizeof(ticket_offsets[0]))

/* a context's ticket keys, derived once per ring and hour; the mutex guards the cache (handshakes run on every worker) */
typedef struct st_ticket_keys_t {
    _Atomic(const rly_keyring_t *) *ring; /* borrowed: the relay's current ring */
    pthread_mutex_t mutex;
    const rly_keyring_t *cached_ring; /* what secrets were derived from; NULL: nothing yet */
    uint64_t period;
    size_t count;
    ticket_secret_t secrets[RLY_KEYS_MAX][TICKET_OFFSETS]; /* [ring key][ticket_offsets index] */
} ticket_keys_t;

static int ticket_index = -1; /* the SSL_CTX ex_data slot of ticket_keys_t */
static pthread_once_t ticket_index_once = PTHREAD_ONCE_INIT;

static void ticket_keys_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    ticket_keys_t *tk = ptr;
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    if (tk == NULL)
        return;
    pthread_mutex_destroy(&tk->mutex);
    OPENSSL_cleanse(tk, sizeof(*tk));
    free(tk);
}

static void ticket_index_init(void)
{
    ticket_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, ticket_keys_free);
}

static ticket_keys_t *ticket_keys_new(_Atomic(const rly_keyring_t *) *ring)
{
    ticket_keys_t *tk = calloc(1, sizeof(*tk));
    if (tk == NULL)
        return NULL;
    tk->ring = ring;
    pthread_mutex_init(&tk->mutex, NULL);
    return tk;
}

/* derives the secrets of kr around period unless cached; mutex held; 0 / -1 (cache emptied) */
static int ticket_keys_update(ticket_keys_t *tk, const rly_keyring_t *kr, uint64_t period)
{
    if (tk->cached_ring == kr && tk->period == period)
        return 0;
    tk->cached_ring = NULL;
    tk->count = 0;
    OPENSSL_cleanse(tk->secrets, sizeof(tk->secrets));
    for (size_t i = 0; i != kr->count && i != RLY_KEYS_MAX; ++i) {
        for (size_t j = 0; j != TICKET_OFFSETS; ++j) {
            ticket_secret_t *s = &tk->secrets[i][j];
            if (rly_ticket_key(&kr->keys[i], period + (uint64_t)(int64_t)ticket_offsets[j], s->name, s->aes, s->hmac) != 0) {
                OPENSSL_cleanse(tk->secrets, sizeof(tk->secrets));
                return -1;
            }
        }
    }
    tk->cached_ring = kr;
    tk->period = period;
    tk->count = kr->count < RLY_KEYS_MAX ? kr->count : RLY_KEYS_MAX;
    return 0;
}

/* the key a new ticket is encrypted under at unix time now: keys[0] of kr, now's period; 0 / -1 */
static int ticket_key_current(ticket_keys_t *tk, const rly_keyring_t *kr, uint64_t now, ticket_secret_t *out)
{
    int ret = -1;
    pthread_mutex_lock(&tk->mutex);
    if (kr->count != 0 && ticket_keys_update(tk, kr, now / RLY_TICKET_PERIOD) == 0) {
        *out = tk->secrets[0][0];
        ret = 0;
    }
    pthread_mutex_unlock(&tk->mutex);
    return ret;
}

/* the key of a ticket named name at unix time now: 1 the current key, 2 another accepted one (renew the ticket), 0 no
 * key of that name (a full handshake), -1 error */
static int ticket_key_find(ticket_keys_t *tk, const rly_keyring_t *kr, uint64_t now, const uint8_t name[TICKET_NAME_LEN],
                           ticket_secret_t *out)
{
    int ret = 0;
    pthread_mutex_lock(&tk->mutex);
    if (ticket_keys_update(tk, kr, now / RLY_TICKET_PERIOD) != 0) {
        ret = -1;
        goto Exit;
    }
    for (size_t i = 0; i != tk->count; ++i) {
        for (size_t j = 0; j != TICKET_OFFSETS; ++j) {
            if (CRYPTO_memcmp(tk->secrets[i][j].name, name, TICKET_NAME_LEN) == 0) {
                *out = tk->secrets[i][j];
                ret = i == 0 && j == 0 ? 1 : 2;
                goto Exit;
            }
        }
    }
Exit:
    pthread_mutex_unlock(&tk->mutex);
    return ret;
}

/* OpenSSL's ticket key callback (SSL_CTX_set_tlsext_ticket_key_evp_cb): sets up ctx and hctx for the ticket's key */
static int ticket_key_cb(SSL *ssl, unsigned char key_name[TICKET_NAME_LEN], unsigned char *iv, EVP_CIPHER_CTX *cctx,
                         EVP_MAC_CTX *hctx, int enc)
{
    ticket_keys_t *tk = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), ticket_index);
    ticket_secret_t key;
    OSSL_PARAM params[3];
    int ret;

    /* TLS 1.2 resumes nothing (and gets no ticket: no_tls12_ticket) */
    if (tk == NULL || SSL_version(ssl) != TLS1_3_VERSION)
        return 0;
    const rly_keyring_t *kr = atomic_load_explicit(tk->ring, memory_order_acquire);
    uint64_t now = (uint64_t)time(NULL);
    if (enc) {
        if (ticket_key_current(tk, kr, now, &key) != 0 || RAND_bytes(iv, EVP_MAX_IV_LENGTH) != 1) {
            ret = -1;
            goto Exit;
        }
        memcpy(key_name, key.name, TICKET_NAME_LEN);
        ret = 1;
    } else if ((ret = ticket_key_find(tk, kr, now, key_name, &key)) <= 0) {
        goto Exit;
    }
    params[0] = OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac, sizeof(key.hmac));
    params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0);
    params[2] = OSSL_PARAM_construct_end();
    if (EVP_MAC_CTX_set_params(hctx, params) != 1 || (enc ? EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, key.aes, iv)
                                                          : EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, key.aes, iv)) != 1)
        ret = -1;
Exit:
    OPENSSL_cleanse(&key, sizeof(key));
    OPENSSL_cleanse(params, sizeof(params));
    return ret;
}

/*
 * A ticket carries (in OpenSSL's ticket app data) the time of the full handshake it descends from. A renewed ticket (a
 * resumption under the previous hour's key or an older ring key) keeps it, so resumption never reaches further than
 * TICKET_LIFETIME after a full handshake, however often a client comes back. OpenSSL also refuses a session older than
 * its timeout, but it restarts that clock with every ticket it issues.
 */
#define TICKET_ORIGIN_LEN 8

static void put_be64(uint8_t out[8], uint64_t v)
{
    for (int i = 7; i >= 0; --i, v >>= 8)
        out[i] = (uint8_t)v;
}

/* 1 if a ticket whose full handshake was at the origin in data (TICKET_ORIGIN_LEN bytes) may resume at unix time now;
 * origins ahead of now (a replica whose clock is ahead) are taken, the key's period bounds them already */
static int ticket_origin_ok(const uint8_t *data, size_t len, uint64_t now)
{
    uint64_t origin = 0;
    if (data == NULL || len != TICKET_ORIGIN_LEN)
        return 0;
    for (size_t i = 0; i != TICKET_ORIGIN_LEN; ++i)
        origin = origin << 8 | data[i];
    return origin >= now || now - origin <= TICKET_LIFETIME;
}

/* before each new ticket: a full handshake stamps its session with now; a resumed one keeps the stamp it was resumed with */
static int ticket_gen_cb(SSL *ssl, void *arg)
{
    uint8_t origin[TICKET_ORIGIN_LEN];
    (void)arg;
    if (SSL_session_reused(ssl))
        return 1;
    put_be64(origin, (uint64_t)time(NULL));
    return SSL_SESSION_set1_ticket_appdata(SSL_get0_session(ssl), origin, sizeof(origin));
}

/* after a ticket was decrypted (or not): OpenSSL's default answers, and no resumption past TICKET_LIFETIME after the
 * full handshake (a full handshake and a fresh ticket instead) */
static SSL_TICKET_RETURN ticket_dec_cb(SSL *ssl, SSL_SESSION *sess, const unsigned char *keyname, size_t keyname_len,
                                       SSL_TICKET_STATUS status, void *arg)
{
    void *data = NULL;
    size_t len = 0;
    (void)ssl, (void)keyname, (void)keyname_len, (void)arg;
    switch (status) {
    case SSL_TICKET_SUCCESS:
    case SSL_TICKET_SUCCESS_RENEW:
        break;
    case SSL_TICKET_EMPTY:
    case SSL_TICKET_NO_DECRYPT:
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    default:
        return SSL_TICKET_RETURN_ABORT;
    }
    if (SSL_SESSION_get0_ticket_appdata(sess, &data, &len) != 1 || !ticket_origin_ok(data, len, (uint64_t)time(NULL)))
        return SSL_TICKET_RETURN_IGNORE_RENEW;
    return status == SSL_TICKET_SUCCESS_RENEW ? SSL_TICKET_RETURN_USE_RENEW : SSL_TICKET_RETURN_USE;
}

/* certificate callback, run once the version is chosen and before the ServerHello: a TLS 1.2 connection announces and
 * sends no ticket. A TLS 1.2 ticket holds the session's master secret itself, so anyone who later read the key file
 * could decrypt recorded TLS 1.2 traffic; a TLS 1.3 resumption still makes a fresh ECDHE exchange. */
static int no_tls12_ticket(SSL *ssl, void *arg)
{
    (void)arg;
    if (SSL_version(ssl) != TLS1_3_VERSION)
        SSL_set_options(ssl, SSL_OP_NO_TICKET);
    return 1;
}

/* stateless TLS 1.3 tickets under the ring's keys; 0 / -1 */
static int use_tickets(SSL_CTX *ctx, _Atomic(const rly_keyring_t *) *keys, char *err, size_t errlen)
{
    ticket_keys_t *tk;

    pthread_once(&ticket_index_once, ticket_index_init);
    if (ticket_index < 0 || (tk = ticket_keys_new(keys)) == NULL) {
        snprintf(err, errlen, "cannot set up session tickets");
        return -1;
    }
    if (SSL_CTX_set_ex_data(ctx, ticket_index, tk) != 1) {
        ticket_keys_free(NULL, tk, NULL, 0, 0, NULL);
        openssl_error(err, errlen, "cannot set up session tickets");
        return -1;
    }
    SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
    /* two tickets per full handshake: browsers use a ticket once, a resumed connection gets no new one unless renewed,
     * and a flow can come back twice on new connections (the confirmation's POST after the 10 s idle timeout, then the
     * callback); each ticket costs an encryption (measured in docs/operations.md, section 10) */
    SSL_CTX_set_num_tickets(ctx, 2);
    SSL_CTX_set_timeout(ctx, TICKET_LIFETIME);
    if (SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_key_cb) != 1 ||
        SSL_CTX_set_session_ticket_cb(ctx, ticket_gen_cb, ticket_dec_cb, NULL) != 1) {
        openssl_error(err, errlen, "cannot set the session ticket callback");
        return -1;
    }
    SSL_CTX_set_cert_cb(ctx, no_tls12_ticket, NULL);
    return 0;
}

static int add_ext(X509 *cert, int nid, const char *value)
{
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
    if (ext == NULL)
        return -1;
    int ok = X509_add_ext(cert, ext, -1);
    X509_EXTENSION_free(ext);
    return ok ? 0 : -1;
}

/* an EC P-256 key and a self-signed certificate for localhost, valid for 30 days */
static int use_dev_certificate(SSL_CTX *ctx, char *err, size_t errlen)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = X509_new();
    int ret = -1;
    if (key == NULL || cert == NULL)
        goto Exit;
    unsigned char serial[16];
    if (RAND_bytes(serial, sizeof(serial)) != 1)
        goto Exit;
    serial[0] &= 0x7f;
    BIGNUM *bn = BN_bin2bn(serial, sizeof(serial), NULL);
    if (bn == NULL)
        goto Exit;
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert));
    BN_free(bn);
    X509_set_version(cert, 2);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 30L * 86400);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1, 0);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"authrelay dev", -1, -1, 0);
    X509_set_issuer_name(cert, name);
    X509_set_pubkey(cert, key);
    if (add_ext(cert, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1,IP:::1") != 0 ||
        add_ext(cert, NID_basic_constraints, "critical,CA:FALSE") != 0 || add_ext(cert, NID_ext_key_usage, "serverAuth") != 0)
        goto Exit;
    if (!X509_sign(cert, key, EVP_sha256()))
        goto Exit;
    if (SSL_CTX_use_certificate(ctx, cert) != 1 || SSL_CTX_use_PrivateKey(ctx, key) != 1)
        goto Exit;
    ret = 0;
Exit:
    if (ret != 0)
        openssl_error(err, errlen, "cannot make the development certificate");
    X509_free(cert);
    EVP_PKEY_free(key);
    return ret;
}

SSL_CTX *relay_tls_new(const relay_config_t *cfg, _Atomic(const rly_keyring_t *) *keys, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        openssl_error(err, errlen, "SSL_CTX_new");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS); /* an idle connection keeps no record buffers (34 KiB) */
    /* no session tickets unless use_tickets below turns TLS 1.3 ones on under the key file's keys: OpenSSL's own are under a
     * random per-process key, so resumption would depend on the replica a client reaches */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
    /* elliptic-curve key exchange only: a finite-field group (ffdhe8192) costs ~150 ms of CPU a handshake (CVE-2002-20001) */
    if (SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") != 1) {
        openssl_error(err, errlen, "cannot restrict the key exchange groups");
        goto Error;
    }
    /* forward-secret AEAD suites only for TLS 1.2; TLS 1.3 defaults are all good */
    SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20");
    /* no server-side session cache, with or without tickets: nothing about a session is kept in the relay */
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
    if (keys != NULL && use_tickets(ctx, keys, err, errlen) != 0)
        goto Error;
    if (cfg->tls_cert != NULL) {
        if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1) {
            openssl_error(err, errlen, "cannot load --tls-cert");
            goto Error;
        }
        if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1) {
            openssl_error(err, errlen, "cannot load --tls-key");
            goto Error;
        }
        if (SSL_CTX_check_private_key(ctx) != 1) {
            openssl_error(err, errlen, "--tls-key does not match --tls-cert");
            goto Error;
        }
    } else if (use_dev_certificate(ctx, err, errlen) != 0) {
        goto Error;
    }
    h2o_ssl_register_alpn_protocols(ctx, alpn_protocols);
    return ctx;
Error:
    SSL_CTX_free(ctx);
    return NULL;
}

/* tls.c: the public listener's SSL_CTX: PEM files, or an ephemeral self-signed certificate for --dev */
#include <stdio.h>
#include <string.h>
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

SSL_CTX *relay_tls_new(const relay_config_t *cfg, char *err, size_t errlen)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL) {
        openssl_error(err, errlen, "SSL_CTX_new");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* no TLS 1.2 session tickets: the ones OpenSSL would issue are under a random per-process key, so resumption would
     * depend on the replica a client reaches (num_tickets below covers TLS 1.3) */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_TICKET);
    /* elliptic-curve key exchange only: a finite-field group (ffdhe8192) costs ~150 ms of CPU a handshake (CVE-2002-20001) */
    if (SSL_CTX_set1_groups_list(ctx, "X25519:P-256:P-384") != 1) {
        openssl_error(err, errlen, "cannot restrict the key exchange groups");
        goto Error;
    }
    /* forward-secret AEAD suites only for TLS 1.2; TLS 1.3 defaults are all good */
    SSL_CTX_set_cipher_list(ctx, "ECDHE+AESGCM:ECDHE+CHACHA20");
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_num_tickets(ctx, 0);
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

/* tls.h: the public listener's SSL_CTX */
#ifndef RELAY_TLS_H
#define RELAY_TLS_H

#include <openssl/ssl.h>
#include "config.h"

/* TLS 1.2+, ALPN h2 and http/1.1, from the configured PEM files, or for --dev without files an ephemeral self-signed
 * certificate for localhost. The caller owns the result (SSL_CTX_free). NULL with a message in err on failure. */
SSL_CTX *relay_tls_new(const relay_config_t *cfg, char *err, size_t errlen);

#endif

/* tls.h: the public listener's SSL_CTX */
#ifndef RELAY_TLS_H
#define RELAY_TLS_H

#include <stdatomic.h>
#include <openssl/ssl.h>
#include "config.h"
#include "keys.h"

/*
 * TLS 1.2+, ALPN h2 and http/1.1, from the configured PEM files, or for --dev without files an ephemeral self-signed
 * certificate for localhost. The caller owns the result (SSL_CTX_free). NULL with a message in err on failure.
 * keys: the relay's current key ring, read at each handshake (borrowed: the pointer and every ring it ever points to must
 * outlive the context; rings are never changed in place). With keys, TLS 1.3 clients get one session ticket per
 * handshake, encrypted under a key derived from keys[0] for the current hour (rly_ticket_key), and tickets under any
 * key of the ring for the previous, current or next hour resume: every replica sharing the key file resumes every
 * replica's tickets. At most an hour old (SSL_CTX_set_timeout), no server-side session cache, no TLS 1.2 tickets.
 * NULL keys: no tickets at all (check-config).
 */
SSL_CTX *relay_tls_new(const relay_config_t *cfg, _Atomic(const rly_keyring_t *) *keys, char *err, size_t errlen);

#endif

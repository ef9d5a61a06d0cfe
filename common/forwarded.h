/* forwarded.h: the client's address from Forwarded (RFC 7239) or X-Forwarded-For, behind trusted proxies; no I/O */
#ifndef RLY_FORWARDED_H
#define RLY_FORWARDED_H

#include <stddef.h>
#include <sys/socket.h>
#include "addr.h"
#include "rly.h"

/* the most hops looked at, right to left: a longer chain of trusted proxies ends at the 32nd hop's address */
#define RLY_FORWARDED_HOPS_MAX 32

/*
 * The client's address for a request that came from peer (the connection's peer, or the address a PROXY header gave),
 * given the address blocks of the trusted proxies (trusted[0..ntrusted)) and the request's header lines: forwarded[0..
 * nforwarded) the values of its Forwarded lines, xff[0..nxff) those of its X-Forwarded-For lines, in the order they
 * came (several lines are one list). Everything is borrowed; nothing is kept or allocated.
 *
 * 0 with *out / *outlen set (AF_INET or AF_INET6 as written, an IPv4-mapped IPv6 address stays one; the port when the
 * header gave one, else 0; the rest zeroed), or -1: keep the peer's own address (*out untouched).
 *
 * The rule, the one that an attacker cannot steer: a header's addresses are hops, the rightmost the latest. Start at the
 * peer. While the current address lies in a trusted block, step one hop to the left; stop at the first address that is
 * not trusted: that is the client. Each hop was written by the proxy to its right, which is trusted, so a client can only
 * add hops to the left of the one its first trusted proxy wrote, and those are never reached. The walk also stops, on the
 * address it has reached, when
 *   - the next hop is not an address: "unknown", an obfuscated node ("_abc"), a Forwarded element without for=, an
 *     X-Forwarded-For entry that is not an IP address (bare, "[v6]", "[v6]:port", "a.b.c.d:port"); a trusted proxy said
 *     it does not know, so the last address known is the client's best name (the proxy itself at worst);
 *   - the line the next hop is in is malformed (Forwarded syntax: a bad token, an unterminated quoted-string, a second
 *     for= in one element...): what its right end says cannot be known. A client can make a line malformed only when its
 *     proxy appends to the client's own line; that puts the client on its proxy's address, never on one it chose;
 *   - the list runs out (every hop was trusted: the leftmost, a trusted address, is the client) or
 *     RLY_FORWARDED_HOPS_MAX hops were taken.
 * The result is -1 when the walk did not leave the peer: the peer is not trusted (its headers are ignored whatever they
 * say), not AF_INET/AF_INET6, there is no header, or the rightmost hop is already unknown or malformed.
 *
 * Which header: the one present. When both are (a proxy that writes one header passes on a client's forgery of the
 * other), each is walked and the result stands only if both name the same address (the port aside); if they differ, -1:
 * the peer. A relay whose proxies write only one header should pass nothing for the other (n = 0), so that a forged one
 * costs nothing. Forwarded is parsed as RFC 7239 says (token or quoted-string values, quoted "[v6]:port" nodes, names
 * case-insensitive, empty list elements and pairs skipped, OWS around ',' and ';'), and for an unquoted for= value it
 * also takes ':' '[' ']' as some proxies write them.
 */
int rly_forwarded_client(const struct sockaddr *peer, const rly_cidr_t *trusted, size_t ntrusted, const rly_str_t *forwarded,
                         size_t nforwarded, const rly_str_t *xff, size_t nxff, struct sockaddr_storage *out, socklen_t *outlen);

#endif

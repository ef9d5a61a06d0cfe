/* proxy.h: the PROXY protocol header (HAProxy's proxy-protocol.txt, versions 1 and 2) parser; no I/O, no allocation */
#ifndef RLY_PROXY_H
#define RLY_PROXY_H

#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

/*
 * The longest header accepted: 536 bytes, the minimum TCP MSS (576 - 40), since the spec has the sender put the whole
 * header in one segment. A version 1 line is at most 107 bytes with its CRLF; a version 2 header is 16 bytes plus its
 * length field, so a length above 520 (room for an AF_UNIX address block, 216 bytes, and 304 bytes of TLVs) is refused.
 * A caller that reads RLY_PROXY_HEADER_MAX bytes without a result > 0 has a bad header (the parser says -1 by then).
 */
#define RLY_PROXY_HEADER_MAX 536

/*
 * Returns the header's length in bytes (> 0) when a whole valid header is at the start of buf, 0 when buf holds a valid
 * but incomplete beginning (read more), -1 when it is not a valid PROXY header. On > 0, *src / *srclen hold the client's
 * address (AF_INET or AF_INET6, port included, the rest of *src zeroed), or *srclen == 0 when the header carries none
 * (v1 UNKNOWN, v2 LOCAL, v2 UNSPEC/UNIX, and v2 UDP, which the spec lets a TCP receiver take as UNSPEC): the
 * connection's own peer address is then kept. On 0 and -1, *src and *srclen are left as they were. Bytes after the
 * header (the request) are not looked at.
 *
 * Strict, as the spec asks: v1 is "PROXY TCP4|TCP6 src dst sport dport\r\n" with single spaces, addresses that
 * inet_pton takes in the family named (IPv4 without leading zeros), ports 0..65535 in decimal without leading zeros, and
 * the CRLF within 107 bytes; "PROXY UNKNOWN" is followed by CRLF or by a space and anything without CR or LF up to the
 * CRLF. v2 is the 12-byte signature, version 2, command LOCAL (everything after the length ignored, the family too) or
 * PROXY; for PROXY the family (UNSPEC, INET, INET6, UNIX) and transport (UNSPEC, STREAM, DGRAM) are each checked, the
 * length must hold the address block of the family, and the bytes after it must be whole TLVs (type, 2-byte length,
 * value), which are skipped (a CRC32C TLV is not verified). A prefix that can no longer become a valid header is -1 as
 * soon as that shows: a first byte other than 'P' or '\r', a wrong signature byte, a bad version, command or family, a
 * v2 length that is too large or too small, a bad character or field in a v1 line, a line longer than 107 bytes.
 */
ssize_t rly_proxy_parse(const void *buf, size_t len, struct sockaddr_storage *src, socklen_t *srclen);

#endif

#!/usr/bin/env python3
"""callback_urls.py: creates sessions on one replica and writes the callback URLs (fresh code, the session's state) for
another, one per line, for `h2load -i`. Loopback only; the relay's dev certificate is self-signed, so no verification.
usage: callback_urls.py CREATE_BASE_URL CALLBACK_BASE_URL COUNT OUT_FILE"""
import http.client
import json
import ssl
import sys
import urllib.parse


def loopback(url):
    u = urllib.parse.urlsplit(url)
    if u.hostname not in ("localhost", "127.0.0.1"):
        sys.exit("callback_urls.py: loopback URLs only")
    return u


def main():
    create, callback, count, out = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    cu, bu = loopback(create), loopback(callback)
    conn = http.client.HTTPSConnection("127.0.0.1", cu.port, context=ssl._create_unverified_context(), timeout=10)
    body = json.dumps({"authorization_server": "https://auth.atlassian.com/authorize"})
    with open(out, "w") as f:
        for i in range(count):
            conn.request("POST", "/v1/sessions", body, {"Content-Type": "application/json"})
            r = conn.getresponse()
            d = json.loads(r.read())
            if r.status != 201:
                sys.exit("callback_urls.py: session creation answered %d" % r.status)
            code = "c%08d-%s" % (i, "x" * 64)
            f.write("https://127.0.0.1:%d/qorus-oauth2-redirect?code=%s&state=%s\n" % (bu.port, code, d["state"]))


main()

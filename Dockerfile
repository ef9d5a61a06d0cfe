# authrelay container image: multi-stage on debian:bookworm-slim.
#
#   build:   docker build -t authrelay .        (no Docker engine: deploy/container-test.sh builds it with podman)
#   run:     docker run --read-only --cap-drop ALL -p 8443:8443 \
#              -v /srv/authrelay:/etc/authrelay:ro -v /srv/redis-password:/run/secrets/redis-password:ro \
#              -e AUTHRELAY_PUBLIC_URL=https://relay.example.com \
#              -e AUTHRELAY_TLS_CERT=/etc/authrelay/tls.crt -e AUTHRELAY_TLS_KEY=/etc/authrelay/tls.key \
#              -e AUTHRELAY_KEYS=/etc/authrelay/keys.json \
#              -e AUTHRELAY_REDIS=redis://redis:6379/0 -e AUTHRELAY_REDIS_PASSWORD_FILE=/run/secrets/redis-password \
#              authrelay
#   try it:  docker run --read-only -p 127.0.0.1:8443:8443 authrelay serve --dev
#
# Mount points (read-only; the files must be readable by UID/GID 10001: `authrelay keygen` writes mode 0600, so chown
# the key file to 10001 (0600/0400) or mount it owned by root with group 10001 and mode 0440; the relay refuses any
# other owner, group access unless root owns it, and any access for others):
#   /etc/authrelay/tls.crt              certificate chain (PEM)        AUTHRELAY_TLS_CERT
#   /etc/authrelay/tls.key              its private key (PEM)          AUTHRELAY_TLS_KEY
#   /etc/authrelay/keys.json            key file from `authrelay keygen` (the SAME file on every replica)  AUTHRELAY_KEYS
#   /run/secrets/redis-password         Redis password                 AUTHRELAY_REDIS_PASSWORD_FILE
# The paths are not preset in ENV so that `serve --dev` (ephemeral certificate and keys) and `--plain` keep working.
# Ports: 8443 public (TLS, or plain HTTP with AUTHRELAY_PLAIN=1 behind a TLS-terminating proxy); 9090 admin
# (/healthz, /readyz, /metrics: never publish it). The image writes nothing at run time: run it with a read-only root.

# ---- build: the same recipe as CI (deploy/packages.sh build, deploy/build.sh) -------------------------------------
FROM debian:bookworm-slim AS build
COPY deploy/packages.sh /src/deploy/packages.sh
RUN /src/deploy/packages.sh build
COPY . /src
RUN /src/deploy/build.sh /build \
    && objcopy --strip-debug /build/authrelay /build/authrelay.stripped \
    && /build/authrelay version

# ---- runtime: the binary, the shared libraries it links, the CA bundle, nothing else --------------------------------
FROM debian:bookworm-slim
COPY deploy/packages.sh /tmp/packages.sh
# curl is here for HEALTHCHECK alone: authrelay has no HTTP-probe subcommand, and a check without a shell script needs
# a client binary. It costs ~0.5 MB (libcurl4 is already required by authrelay) and adds no library.
RUN /tmp/packages.sh runtime \
    && apt-get install -y -q --no-install-recommends curl \
    && apt-get clean \
    && rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/apt /var/log/dpkg.log /tmp/packages.sh \
    && groupadd --gid 10001 authrelay \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin authrelay \
    && install -d -m 0755 -o root -g root /etc/authrelay /run/secrets
COPY --from=build /build/authrelay.stripped /usr/local/bin/authrelay

LABEL org.opencontainers.image.title="authrelay" \
      org.opencontainers.image.description="OAuth authorization relay for Qorus Integration Engine instances"
ENV AUTHRELAY_LISTEN=0.0.0.0:8443 \
    AUTHRELAY_ADMIN_LISTEN=0.0.0.0:9090
USER 10001:10001
WORKDIR /
EXPOSE 8443 9090
STOPSIGNAL SIGTERM
# Kubernetes ignores HEALTHCHECK (deploy/k8s uses probes); Docker and compose use it. Assumes the default admin port.
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD ["curl", "-fsS", "-o", "/dev/null", "--max-time", "2", "http://127.0.0.1:9090/healthz"]
ENTRYPOINT ["/usr/local/bin/authrelay"]
CMD ["serve"]

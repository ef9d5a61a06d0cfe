/* client_cmd.c: the `authrelay client` command line: options, --help, the browser hint, exit codes */
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <fcntl.h>
#include "client.h"

int relay_client_main(int argc, char **argv);

extern char **environ;

static volatile sig_atomic_t interrupted;
static pid_t opener = -1;

static void usage(FILE *out)
{
    fprintf(out,
            "usage: authrelay client authorize --relay URL --authorize-url URL --client-id ID [options]\n"
            "\n"
            "Plays an instance: creates a session at the relay, prints the authorize URL to open,\n"
            "waits for the authorization server's redirect, prints the result (or exchanges the code).\n"
            "\n"
            "  --relay URL               the relay's base URL (discovery: URL/.well-known/authrelay)\n"
            "  --authorize-url URL       the authorization server's authorize endpoint\n"
            "  --client-id ID            the OAuth client id\n"
            "  --scope S                 a scope; repeatable (sent space-separated)\n"
            "  --audience A              e.g. api.atlassian.com\n"
            "  --prompt P                e.g. consent\n"
            "  --param K=V               an extra authorize parameter; repeatable\n"
            "  --return-uri URI          where the relay sends the browser afterwards\n"
            "  --seal                    have the result sealed to a fresh X25519 key of this client\n"
            "  --token-url URL           exchange the code at this token endpoint and print its response\n"
            "  --client-secret-file F    the client secret (trimmed), sent only to --token-url\n"
            "  --pkce                    send an S256 code challenge (and the verifier to --token-url)\n"
            "  --ttl SEC                 session lifetime, %d to the relay's session_ttl_max (default: the relay's)\n"
            "  --cacert FILE             trust this CA or certificate for the relay and the authorization server\n"
            "  --insecure                skip certificate checks; only for a loopback relay, and said on stderr\n"
            "  --timeout SEC             per request, 1 to %d (default %d; a long-poll gets its wait on top)\n"
            "\n"
            "http:// URLs are accepted only for loopback hosts. The authorize URL is printed alone on one\n"
            "line of stderr, prefixed \"Open: \" (and opened with xdg-open when a display is available);\n"
            "stdout carries only the final JSON: the result {\"status\":\"authorized\",\"code\",\"state\"},\n"
            "the denied result, or the token response with --token-url. The client secret, the PKCE\n"
            "verifier and tokens are never sent to the relay.\n"
            "\n"
            "exit status:\n"
            "  0  authorized (and the code exchanged, with --token-url)\n"
            "  1  runtime failure: relay unreachable, relay error, token endpoint error, interrupted\n"
            "  2  usage error\n"
            "  3  denied: the authorization server returned an error (the denied result is on stdout)\n"
            "  4  expired: the session expired, or the relay forgot it, before the callback arrived\n"
            "  5  bad seal: with --seal, the result did not open, or came back unsealed\n",
            RLY_TTL_MIN, RLY_CLIENT_TIMEOUT_MAX, RLY_CLIENT_TIMEOUT_DEFAULT);
}

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* "Open: URL" on stderr, and the URL handed to xdg-open in the background when there is a display */
static void show_url(const char *url, void *ud)
{
    const char *d = getenv("DISPLAY"), *w = getenv("WAYLAND_DISPLAY");
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    char *const args[] = {"xdg-open", (char *)url, NULL};

    (void)ud;
    fprintf(stderr, "Open: %s\n", url);
    fflush(stderr);
    if ((d == NULL || *d == '\0') && (w == NULL || *w == '\0'))
        return;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    posix_spawnattr_init(&attr);
    posix_spawnattr_setpgroup(&attr, 0); /* its own process group: a Ctrl-C here does not reach the browser */
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP);
    if (posix_spawnp(&opener, "xdg-open", &fa, &attr, args, environ) != 0)
        opener = -1; /* no xdg-open: the "Open:" line is enough */
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
}

int relay_client_main(int argc, char **argv)
{
    rly_client_opts_t o;
    char err[1024];
    struct sigaction sa;
    int rc;

    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? RLY_CLIENT_USAGE : RLY_CLIENT_OK;
    }
    if (strcmp(argv[1], "authorize") != 0) {
        fprintf(stderr, "authrelay client: unknown subcommand: %s (try `authrelay client --help`)\n", argv[1]);
        return RLY_CLIENT_USAGE;
    }
    if (rly_client_parse_args(&o, argc - 2, argv + 2, err, sizeof(err)) != 0) {
        fprintf(stderr, "authrelay client: %s (try `authrelay client --help`)\n", err);
        return RLY_CLIENT_USAGE;
    }
    if (o.help) {
        usage(stdout);
        return RLY_CLIENT_OK;
    }

    /* SIGINT / SIGTERM: stop waiting, delete the session, exit 1 */
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    o.cancel = &interrupted;
    o.on_authorize_url = show_url;

    rc = (int)rly_client_authorize(&o, stdout, stderr, err, sizeof(err));
    if (rc != RLY_CLIENT_OK)
        fprintf(stderr, "authrelay client: %s\n", err);
    if (opener > 0)
        waitpid(opener, NULL, WNOHANG);
    return rc;
}

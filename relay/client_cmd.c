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
            "Plays an instance (protocol 1.1): creates a session at the relay with the authorize parameters,\n"
            "prints its start_url to open, takes the relay's return POST (the release key) on a loopback\n"
            "port, waits for the result, unlocks it and prints it (or exchanges the code).\n"
            "\n"
            "  --relay URL               the relay's base URL (discovery: URL/.well-known/authrelay)\n"
            "  --authorize-url URL       the authorization server's authorize endpoint\n"
            "  --client-id ID            the OAuth client id\n"
            "  --scope S                 a scope; repeatable (sent space-separated)\n"
            "  --audience A              e.g. api.atlassian.com\n"
            "  --prompt P                e.g. consent\n"
            "  --param K=V               an extra authorize parameter; repeatable\n"
            "  --label TEXT              the instance's name, shown (as unverified) on the relay's confirmation page\n"
            "  --listen-port N           the return listener's port on 127.0.0.1 (default: an ephemeral one)\n"
            "  --no-listen               no return listener: paste the session and release key from the relay's\n"
            "                            last page when asked (on stderr), on one line or two; needs --return-uri\n"
            "  --return-uri URI          with --no-listen (no query) or --unbound only: where the relay's last page\n"
            "                            sends the browser; otherwise the return_uri is the listener's own,\n"
            "                            http://127.0.0.1:PORT" RLY_CLIENT_RETURN_PATH "\n"
            "  --unbound                 a protocol version 1 flow, for a relay run with --allow-unbound: no\n"
            "                            confirmation page, the authorize URL is built here, nothing to unlock\n"
            "  --seal                    have the result sealed to a fresh X25519 key of this client\n"
            "  --token-url URL           exchange the code at this token endpoint and print its response\n"
            "  --client-secret-file F    the client secret (trimmed), sent only to --token-url\n"
            "  --pkce                    send an S256 code challenge (and the verifier to --token-url)\n"
            "  --ttl SEC                 session lifetime, %d to the relay's session_ttl_max (default: the relay's)\n"
            "  --cacert FILE             trust this CA or certificate for the relay and the authorization server\n"
            "  --insecure                skip certificate checks; only for a loopback relay, and said on stderr\n"
            "  --timeout SEC             per request, 1 to %d (default %d; a long-poll gets its wait on top)\n"
            "\n"
            "http:// URLs are accepted only for loopback hosts. The URL to open (the session's start_url;\n"
            "with --unbound the authorize URL) is printed alone on one line of stderr, prefixed \"Open: \"\n"
            "(and opened with xdg-open when a display is available). The return listener answers the\n"
            "browser's POST to " RLY_CLIENT_RETURN_PATH " with a 303 to its own page " RLY_CLIENT_DONE_PATH ", and refuses\n"
            "(400) a release key for another session. stdout carries only the final JSON: the result\n"
            "{\"status\":\"authorized\",\"code\",\"state\"}, the denied result, or the token response with\n"
            "--token-url. The client secret, the PKCE verifier, the release key and tokens are never sent\n"
            "to the relay.\n"
            "\n"
            "exit status:\n"
            "  0  authorized (and the code exchanged, with --token-url)\n"
            "  1  runtime failure: relay unreachable, relay error (also: discovery says a version other than\n"
            "     1.1, or with --unbound other than 1 or 1.1; --unbound on a relay without unbound sessions),\n"
            "     token endpoint error, the return listener's port taken, --no-listen's input ended,\n"
            "     interrupted\n"
            "  2  usage error\n"
            "  3  denied: the authorization server returned an error, or the user cancelled on the relay's\n"
            "     confirmation page (the denied result is on stdout)\n"
            "  4  expired: the session expired, or the relay forgot it, before the callback arrived; or the\n"
            "     release key did not arrive (was not pasted) within the session's lifetime\n"
            "  5  bad seal or lock: the result did not open with the --seal key or with the release key (the\n"
            "     key of another sign-in, mistyped, or tampered with), or came back unsealed or unlocked\n",
            RLY_TTL_MIN, RLY_CLIENT_TIMEOUT_MAX, RLY_CLIENT_TIMEOUT_DEFAULT);
}

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* "Open: URL" on stderr (the start_url, or the authorize URL with --unbound), and the URL handed to xdg-open in the
 * background when there is a display */
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

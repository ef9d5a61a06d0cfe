/* main.c: authrelay's subcommand dispatch: serve, check-config, keygen, audit, client, version */
#include <stdio.h>
#include <string.h>
#include <h2o/version.h>
#include <openssl/opensslv.h>
#include "audit.h"
#include "config.h"
#include "keys.h"
#include "serve.h"
#include "tls.h"
#include "rly.h"
#include <openssl/crypto.h>

static void usage(FILE *out)
{
    fputs("usage: authrelay <command> [options]\n"
          "\n"
          "commands:\n"
          "  serve [--dev] [options]      run the relay (the default command); see `authrelay serve --help`\n"
          "  check-config [options]       check the configuration, print \"configuration OK\" or each error\n"
          "  keygen FILE                  write a new key file (mode 0600); refuses to overwrite\n"
          "  keygen --rotate FILE         put a new key first, keep the previous ones (at most 3 in all)\n"
          "  audit [options] [FILE|-]     check an authrelay log for schema violations and identifying data;\n"
          "                               see `authrelay audit --help` (--allow-as: against the relay's allow-list)\n"
          "  client authorize [options]   play an instance: run one OAuth flow through a relay; see `authrelay client --help`\n"
          "  version                      print the version\n"
          "\n"
          "exit status: 0 success, 1 runtime failure, 2 usage error\n",
          out);
}

static int cmd_serve(int argc, char **argv)
{
    relay_config_t cfg;
    relay_config_status_t st = relay_config_load(&cfg, argc, argv, stderr);
    int rc = st == RELAY_CONFIG_HELP ? 0 : (int)st;
    if (st != RELAY_CONFIG_OK)
        goto Exit;
    rc = relay_serve(&cfg);
Exit:
    relay_config_free(&cfg);
    return rc;
}

static int cmd_check_config(int argc, char **argv)
{
    relay_config_t cfg;
    relay_config_status_t st = relay_config_load(&cfg, argc, argv, stderr);
    int rc = st == RELAY_CONFIG_HELP ? 0 : (int)st;
    if (st == RELAY_CONFIG_OK && cfg.keys != NULL) {
        /* the key file is read here too: a config that names an unreadable or malformed one is not OK */
        rly_keyring_t kr;
        char err[256];
        if (rly_keyring_load(&kr, cfg.keys, err, sizeof(err)) != 0) {
            fprintf(stderr, "authrelay: --keys: %s\n", err);
            rc = 1;
        }
        OPENSSL_cleanse(&kr, sizeof(kr));
    }
    if (st == RELAY_CONFIG_OK && rc == 0 && !cfg.plain && cfg.tls_cert != NULL) {
        /* load the certificate and key as serve would: unparsable or mismatched files are not OK either */
        char err[512];
        SSL_CTX *ctx = relay_tls_new(&cfg, NULL, err, sizeof(err));
        if (ctx == NULL) {
            fprintf(stderr, "authrelay: %s\n", err);
            rc = 1;
        }
        SSL_CTX_free(ctx);
    }
    if (st == RELAY_CONFIG_OK && rc == 0)
        puts("configuration OK");
    relay_config_free(&cfg);
    return rc;
}

static int cmd_keygen(int argc, char **argv)
{
    int rotate = 0;
    const char *path = NULL;
    for (int i = 1; i < argc; ++i) {
        if (strcmp(argv[i], "--rotate") == 0) {
            rotate = 1;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            puts("usage: authrelay keygen [--rotate] FILE\n"
                 "  writes a new key file (mode 0600) and refuses to overwrite one;\n"
                 "  with --rotate, puts a new key first and keeps the previous ones (at most 3 in all)");
            return 0;
        } else if (argv[i][0] == '-' || path != NULL) {
            fprintf(stderr, "authrelay keygen: unexpected argument: %s\n", argv[i]);
            return 2;
        } else {
            path = argv[i];
        }
    }
    if (path == NULL) {
        fputs("usage: authrelay keygen [--rotate] FILE\n", stderr);
        return 2;
    }
    char err[256];
    if (rly_keygen(path, rotate, err, sizeof(err)) != 0) {
        fprintf(stderr, "authrelay keygen: %s\n", err);
        return 1;
    }
    return 0;
}

#define AUDIT_USAGE "usage: authrelay audit [--allow-as HOST|*.SUFFIX]... [FILE|-]\n"

static int cmd_audit(int argc, char **argv)
{
    const char *path = NULL, *errstr;
    rly_audit_t *a = rly_audit_new();
    FILE *in = stdin;
    int rc = 2;

    if (a == NULL) {
        fputs("authrelay audit: out of memory\n", stderr);
        rc = 1;
        goto Exit;
    }
    for (int i = 1; i < argc; ++i) {
        const char *value;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(AUDIT_USAGE, stdout);
            fputs("  checks every line of an authrelay log against the log schema and for identifying data\n"
                  "  (addresses, e-mail addresses, tokens, URLs, a msg that is not one of the relay's own texts,\n"
                  "  an as that is no allow-list entry); prints totals per AS, event and outcome;\n"
                  "  exit status 0 clean, 1 violations, 2 usage error\n"
                  "\n"
                  "  --allow-as HOST|*.SUFFIX  the relay's allow-list: as must then be one of these entries or\n"
                  "                            \"unlisted\"; repeatable, or comma-separated (without it: any entry)\n",
                  stdout);
            rc = 0;
            goto Exit;
        }
        if (strcmp(argv[i], "--allow-as") == 0) {
            if (i + 1 >= argc) {
                fputs("authrelay audit: --allow-as needs a value (HOST|*.SUFFIX)\n" AUDIT_USAGE, stderr);
                goto Exit;
            }
            value = argv[++i];
        } else if (strncmp(argv[i], "--allow-as=", 11) == 0) {
            value = argv[i] + 11;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            fprintf(stderr, "authrelay audit: unknown option: %s\n" AUDIT_USAGE, argv[i]);
            goto Exit;
        } else if (path != NULL) {
            fprintf(stderr, "authrelay audit: unexpected argument: %s\n" AUDIT_USAGE, argv[i]);
            goto Exit;
        } else {
            path = argv[i];
            continue;
        }
        if (rly_audit_allow_as(a, value, &errstr) != 0) {
            fprintf(stderr, "authrelay audit: --allow-as %s: %s\n", value, errstr);
            goto Exit;
        }
    }
    if (path != NULL && strcmp(path, "-") != 0 && (in = fopen(path, "r")) == NULL) {
        fprintf(stderr, "authrelay audit: cannot open %s\n", path);
        rc = 1;
        goto Exit;
    }
    rc = rly_audit_run(a, in, stdout);

Exit:
    if (in != NULL && in != stdin)
        fclose(in);
    rly_audit_free(a);
    return rc;
}

int relay_client_main(int argc, char **argv); /* client_cmd.c */

int main(int argc, char **argv)
{
    if (argc >= 2 && argv[1][0] != '-') {
        const char *cmd = argv[1];
        if (strcmp(cmd, "serve") == 0)
            return cmd_serve(argc - 1, argv + 1);
        if (strcmp(cmd, "check-config") == 0)
            return cmd_check_config(argc - 1, argv + 1);
        if (strcmp(cmd, "keygen") == 0)
            return cmd_keygen(argc - 1, argv + 1);
        if (strcmp(cmd, "audit") == 0)
            return cmd_audit(argc - 1, argv + 1);
        if (strcmp(cmd, "client") == 0)
            return relay_client_main(argc - 1, argv + 1);
        if (strcmp(cmd, "version") == 0) {
            printf("authrelay %s (protocol %s; libh2o %s, %s)\n", RLY_VERSION, RLY_PROTOCOL_VERSION, H2O_VERSION,
                   OPENSSL_VERSION_TEXT);
            return 0;
        }
        if (strcmp(cmd, "help") == 0) {
            usage(stdout);
            return 0;
        }
        fprintf(stderr, "authrelay: unknown command: %s\n", cmd);
        usage(stderr);
        return 2;
    }
    if (argc >= 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc >= 2 && strcmp(argv[1], "--version") == 0) {
        printf("authrelay %s\n", RLY_VERSION);
        return 0;
    }
    /* no command: serve, with every argument an option of serve */
    argv[0] = "serve";
    return cmd_serve(argc, argv);
}

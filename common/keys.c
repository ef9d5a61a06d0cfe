/* keys.c: the relay's key file (load, keygen, rotation), HKDF sub-keys and AES-256-GCM data encryption under them */
#include "keys.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "b64url.h"
#include "seal.h"
#include "tcache.h"

#define KEY_FILE_MAX 4096 /* a file of RLY_KEYS_MAX keys takes about 300 bytes */
#define KEY_FILE_DEPTH 4
#define DATA_VERSION 0x01
#define NONCE_LEN 12

/* a key as the file holds it: its id and 32 bytes of master key */
typedef struct st_master_t {
    char id[RLY_KEY_ID_MAX + 1];
    uint8_t key[32];
} master_t;

typedef struct st_masters_t {
    size_t count;
    master_t keys[RLY_KEYS_MAX];
} masters_t;

__attribute__((format(printf, 3, 4))) static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

static int is_key_id(const char *s, size_t len)
{
    return len >= 1 && len <= RLY_KEY_ID_MAX && rly_b64url_is_charset(s, len);
}

int rly_key_derive(rly_key_t *key, const char *id, const uint8_t master[32])
{
    size_t idlen = strnlen(id, RLY_KEY_ID_MAX);

    memset(key, 0, sizeof(*key));
    memcpy(key->id, id, idlen);
    key->id[idlen] = '\0';
    if (rly_hkdf_sha256(key->state_key, 32, master, 32, NULL, 0, "authrelay state mac v1") != 0 ||
        rly_hkdf_sha256(key->data_key, 32, master, 32, NULL, 0, "authrelay data key v1") != 0 ||
        rly_hkdf_sha256(key->cookie_key, 32, master, 32, NULL, 0, "authrelay flow cookie v1") != 0 ||
        rly_hkdf_sha256(key->csrf_key, 32, master, 32, NULL, 0, "authrelay csrf token v1") != 0 ||
        rly_hkdf_sha256(key->ticket_key, 32, master, 32, NULL, 0, "authrelay tls ticket v1") != 0) {
        OPENSSL_cleanse(key, sizeof(*key));
        return -1;
    }
    return 0;
}

int rly_ticket_key(const rly_key_t *key, uint64_t period, uint8_t name[16], uint8_t aes[32], uint8_t hmac[32])
{
    char info[64];
    uint8_t okm[80];
    int ret = -1;

    snprintf(info, sizeof(info), "authrelay tls ticket v1 period %llu", (unsigned long long)period);
    if (rly_hkdf_sha256(okm, sizeof(okm), key->ticket_key, sizeof(key->ticket_key), NULL, 0, info) != 0) {
        OPENSSL_cleanse(name, 16);
        OPENSSL_cleanse(aes, 32);
        OPENSSL_cleanse(hmac, 32);
        goto Exit;
    }
    memcpy(name, okm, 16);
    memcpy(aes, okm + 16, 32);
    memcpy(hmac, okm + 48, 32);
    ret = 0;
Exit:
    OPENSSL_cleanse(okm, sizeof(okm));
    return ret;
}

int rly_keyring_ephemeral(rly_keyring_t *kr)
{
    uint8_t master[32];
    rly_keyring_t tmp = {.count = 1};
    int ret = -1;

    if (RAND_bytes(master, sizeof(master)) != 1 || rly_key_derive(&tmp.keys[0], "ephemeral", master) != 0)
        goto Exit;
    *kr = tmp;
    ret = 0;
Exit:
    OPENSSL_cleanse(master, sizeof(master));
    OPENSSL_cleanse(&tmp, sizeof(tmp));
    return ret;
}

/*
 * Who may read the key file, PostgreSQL's rule for ssl_key_file (be-secure-common.c check_ssl_key_file_permissions):
 * owned by the user the process runs as, nothing for group or others (0600, 0400); owned by root, read for the group
 * and nothing more (0640, 0440: a Kubernetes secret mounted with fsGroup, a systemd credential with its ACL); any other
 * owner refused; never anything for others. A root process takes root-owned files by the root rule. st: of the open
 * descriptor. 0 / -1 with a message in err.
 */
static int check_key_file_mode(const struct stat *st, const char *path, char *err, size_t errlen)
{
    unsigned mode = (unsigned)(st->st_mode & 07777);

    if ((st->st_mode & S_IRWXO) != 0) {
        seterr(err, errlen, "key file %s has mode %04o: it must not be %s by others (chmod 600)", path, mode,
               (st->st_mode & S_IROTH) != 0 ? "readable" : "accessible");
        return -1;
    }
    if (st->st_uid == 0) {
        if ((st->st_mode & (S_IWGRP | S_IXGRP)) != 0) {
            seterr(err, errlen,
                   "key file %s has mode %04o: owned by root, it may be readable by its group, nothing more (chmod 640)", path,
                   mode);
            return -1;
        }
        return 0;
    }
    if (st->st_uid != geteuid()) {
        seterr(err, errlen, "key file %s is owned by uid %u: it must be owned by the user the relay runs as (uid %u) or by root",
               path, (unsigned)st->st_uid, (unsigned)geteuid());
        return -1;
    }
    if ((st->st_mode & S_IRWXG) != 0) {
        seterr(err, errlen, "key file %s has mode %04o: it must not be readable by its group unless root owns it (chmod 600)", path,
               mode);
        return -1;
    }
    return 0;
}

/* reads a whole regular file of at most KEY_FILE_MAX bytes into buf (KEY_FILE_MAX + 1 bytes); check_mode: refuses a file
 * others may read (check_key_file_mode), checked on the opened descriptor; the length, or -1 */
static long read_key_file(const char *path, int check_mode, char *buf, char *err, size_t errlen)
{
    struct stat st;
    size_t len = 0;
    long ret = -1;
    int fd;

    if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
        seterr(err, errlen, "cannot open key file %s: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        seterr(err, errlen, "key file %s is not a regular file", path);
        goto Exit;
    }
    if (check_mode && check_key_file_mode(&st, path, err, errlen) != 0)
        goto Exit;
    for (;;) {
        ssize_t r = read(fd, buf + len, KEY_FILE_MAX + 1 - len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            seterr(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
            goto Exit;
        }
        if (r == 0)
            break;
        len += (size_t)r;
        if (len > KEY_FILE_MAX) {
            seterr(err, errlen, "key file %s is larger than %d bytes", path, KEY_FILE_MAX);
            goto Exit;
        }
    }
    ret = (long)len;
Exit:
    close(fd);
    return ret;
}

/* overwrites the key strings json-c holds, then frees the document */
static void free_wiped(json_object *doc)
{
    json_object *keys, *entry, *key;

    if (doc == NULL)
        return;
    if (json_object_object_get_ex(doc, "keys", &keys) && json_object_is_type(keys, json_type_array)) {
        for (size_t i = 0; i != json_object_array_length(keys); ++i) {
            entry = json_object_array_get_idx(keys, i);
            if (json_object_object_get_ex(entry, "key", &key) && json_object_is_type(key, json_type_string))
                OPENSSL_cleanse((char *)json_object_get_string(key), (size_t)json_object_get_string_len(key));
        }
    }
    json_object_put(doc);
}

static int parse_entry(masters_t *m, size_t idx, json_object *entry, char *err, size_t errlen)
{
    const char *id, *key;
    size_t idlen, keylen;
    json_object *jid = NULL, *jkey = NULL;

    if (!json_object_is_type(entry, json_type_object)) {
        seterr(err, errlen, "keys[%zu] is not an object", idx);
        return -1;
    }
    json_object_object_foreach(entry, name, val)
    {
        if (strcmp(name, "id") == 0) {
            jid = val;
        } else if (strcmp(name, "key") == 0) {
            jkey = val;
        } else {
            seterr(err, errlen, "keys[%zu] has an unknown member", idx);
            return -1;
        }
    }
    if (jid == NULL || !json_object_is_type(jid, json_type_string)) {
        seterr(err, errlen, "keys[%zu].id is missing or not a string", idx);
        return -1;
    }
    id = json_object_get_string(jid);
    idlen = (size_t)json_object_get_string_len(jid);
    if (!is_key_id(id, idlen) || strlen(id) != idlen) {
        seterr(err, errlen, "keys[%zu].id must be 1 to %d characters of [A-Za-z0-9_-]", idx, RLY_KEY_ID_MAX);
        return -1;
    }
    for (size_t i = 0; i != idx; ++i) {
        if (strcmp(m->keys[i].id, id) == 0) {
            seterr(err, errlen, "keys[%zu].id %s is a duplicate", idx, id);
            return -1;
        }
    }
    if (jkey == NULL || !json_object_is_type(jkey, json_type_string)) {
        seterr(err, errlen, "keys[%zu].key is missing or not a string", idx);
        return -1;
    }
    key = json_object_get_string(jkey);
    keylen = (size_t)json_object_get_string_len(jkey);
    if (rly_b64url_decode(m->keys[idx].key, sizeof(m->keys[idx].key), key, keylen) != 32) {
        seterr(err, errlen, "keys[%zu].key is not the base64url of 32 bytes", idx);
        return -1;
    }
    memcpy(m->keys[idx].id, id, idlen + 1);
    return 0;
}

/* parses a key file's text strictly into m; 0 / -1 with a message in err */
static int parse_key_file(masters_t *m, const char *text, size_t len, char *err, size_t errlen)
{
    json_tokener *tok = NULL;
    json_object *doc = NULL, *version = NULL, *keys = NULL;
    size_t end, count;
    int ret = -1;

    memset(m, 0, sizeof(*m));
    if (memchr(text, '\0', len) != NULL) {
        seterr(err, errlen, "key file is not JSON text");
        goto Exit;
    }
    if ((tok = json_tokener_new_ex(KEY_FILE_DEPTH)) == NULL) {
        seterr(err, errlen, "out of memory");
        goto Exit;
    }
    json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS | JSON_TOKENER_VALIDATE_UTF8);
    doc = json_tokener_parse_ex(tok, text, (int)len);
    if (doc == NULL || json_tokener_get_error(tok) != json_tokener_success) {
        seterr(err, errlen, "key file is not valid JSON");
        goto Exit;
    }
    for (end = json_tokener_get_parse_end(tok); end < len; ++end) {
        if (strchr(" \t\r\n", text[end]) == NULL) {
            seterr(err, errlen, "key file has data after the JSON object");
            goto Exit;
        }
    }
    if (!json_object_is_type(doc, json_type_object)) {
        seterr(err, errlen, "key file is not a JSON object");
        goto Exit;
    }
    json_object_object_foreach(doc, name, val)
    {
        if (strcmp(name, "version") == 0) {
            version = val;
        } else if (strcmp(name, "keys") == 0) {
            keys = val;
        } else {
            seterr(err, errlen, "key file has an unknown member");
            goto Exit;
        }
    }
    if (version == NULL || !json_object_is_type(version, json_type_int) || json_object_get_int64(version) != 1) {
        seterr(err, errlen, "key file \"version\" must be 1");
        goto Exit;
    }
    if (keys == NULL || !json_object_is_type(keys, json_type_array)) {
        seterr(err, errlen, "key file \"keys\" must be an array");
        goto Exit;
    }
    if ((count = json_object_array_length(keys)) == 0 || count > RLY_KEYS_MAX) {
        seterr(err, errlen, "key file must hold 1 to %d keys, not %zu", RLY_KEYS_MAX, count);
        goto Exit;
    }
    for (size_t i = 0; i != count; ++i)
        if (parse_entry(m, i, json_object_array_get_idx(keys, i), err, errlen) != 0)
            goto Exit;
    m->count = count;
    ret = 0;
Exit:
    if (ret != 0)
        OPENSSL_cleanse(m, sizeof(*m));
    free_wiped(doc);
    if (tok != NULL) {
        /* the tokener's scratch buffer last held a string, possibly a key */
        struct printbuf *pb = tok->pb;
        if (pb != NULL && pb->buf != NULL && pb->size > 0)
            OPENSSL_cleanse(pb->buf, (size_t)pb->size);
        json_tokener_free(tok);
    }
    return ret;
}

static int load_masters(masters_t *m, const char *path, int check_mode, char *err, size_t errlen)
{
    char buf[KEY_FILE_MAX + 1], msg[256];
    long len;
    int ret = -1;

    if ((len = read_key_file(path, check_mode, buf, err, errlen)) < 0)
        goto Exit;
    if (parse_key_file(m, buf, (size_t)len, msg, sizeof(msg)) != 0) {
        seterr(err, errlen, "%s: %s", path, msg);
        goto Exit;
    }
    ret = 0;
Exit:
    OPENSSL_cleanse(buf, sizeof(buf));
    return ret;
}

int rly_keyring_load(rly_keyring_t *kr, const char *path, char *err, size_t errlen)
{
    masters_t m;
    rly_keyring_t tmp = {0};
    int ret = -1;

    if (load_masters(&m, path, 1, err, errlen) != 0)
        return -1;
    for (size_t i = 0; i != m.count; ++i) {
        if (rly_key_derive(&tmp.keys[i], m.keys[i].id, m.keys[i].key) != 0) {
            seterr(err, errlen, "%s: cannot derive keys", path);
            goto Exit;
        }
    }
    tmp.count = m.count;
    *kr = tmp;
    ret = 0;
Exit:
    OPENSSL_cleanse(&m, sizeof(m));
    OPENSSL_cleanse(&tmp, sizeof(tmp));
    return ret;
}

/* "k" + UTC time + "-" + 4 random characters of [a-z0-9], different from every id in m */
static int new_key_id(char id[RLY_KEY_ID_MAX + 1], const masters_t *m)
{
    static const char chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";
    time_t now = time(NULL);
    struct tm tm;
    size_t len;

    if (gmtime_r(&now, &tm) == NULL || (len = strftime(id, RLY_KEY_ID_MAX + 1, "k%Y%m%dT%H%M%S-", &tm)) == 0)
        return -1;
    for (int attempt = 0; attempt != 100; ++attempt) {
        size_t n = len, i;
        while (n != len + 4) {
            uint8_t b;
            if (RAND_bytes(&b, 1) != 1)
                return -1;
            if (b < 252) /* 252 = 7 * 36: no bias */
                id[n++] = chars[b % 36];
        }
        id[n] = '\0';
        for (i = 0; i != m->count && strcmp(m->keys[i].id, id) != 0; ++i)
            ;
        if (i == m->count)
            return 0;
    }
    return -1;
}

/* the key file text of m (NUL-terminated) into buf; its length, or -1 if buf is too small */
static long format_key_file(char *buf, size_t cap, const masters_t *m)
{
    char key[RLY_B64URL_ENCODED_LEN(32) + 1];
    size_t len = 0;
    long ret = -1;
    int n;

    if ((n = snprintf(buf, cap, "{\"version\": 1, \"keys\": [\n")) < 0 || (size_t)n >= cap)
        goto Exit;
    len = (size_t)n;
    for (size_t i = 0; i != m->count; ++i) {
        rly_b64url_encode(key, m->keys[i].key, 32);
        n = snprintf(buf + len, cap - len, "  {\"id\": \"%s\", \"key\": \"%s\"}%s\n", m->keys[i].id, key,
                     i + 1 == m->count ? "" : ",");
        if (n < 0 || (size_t)n >= cap - len)
            goto Exit;
        len += (size_t)n;
    }
    if ((n = snprintf(buf + len, cap - len, "]}\n")) < 0 || (size_t)n >= cap - len)
        goto Exit;
    ret = (long)(len + (size_t)n);
Exit:
    OPENSSL_cleanse(key, sizeof(key));
    return ret;
}

static int write_all(int fd, const char *buf, size_t len)
{
    while (len != 0) {
        ssize_t r = write(fd, buf, len);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        buf += r;
        len -= (size_t)r;
    }
    return 0;
}

/* makes a rename in the directory of path durable; best effort */
static void sync_dir(const char *path)
{
    char dir[PATH_MAX];
    const char *slash = strrchr(path, '/');
    int fd;

    if (slash == NULL) {
        memcpy(dir, ".", 2);
    } else if (slash == path) {
        memcpy(dir, "/", 2);
    } else {
        if ((size_t)(slash - path) >= sizeof(dir))
            return;
        memcpy(dir, path, (size_t)(slash - path));
        dir[slash - path] = '\0';
    }
    if ((fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
        return;
    fsync(fd);
    close(fd);
}

int rly_keygen(const char *path, int rotate, char *err, size_t errlen)
{
    masters_t old = {0}, next = {0};
    char text[KEY_FILE_MAX], *tmp = NULL;
    size_t pathlen = strlen(path);
    long len;
    int fd = -1, ret = -1, created = 0;

    /* a rotation reads the file whatever its mode and writes the new one 0600 */
    if (rotate && load_masters(&old, path, 0, err, errlen) != 0)
        goto Exit;
    if (new_key_id(next.keys[0].id, &old) != 0 || RAND_bytes(next.keys[0].key, 32) != 1) {
        seterr(err, errlen, "cannot generate a key");
        goto Exit;
    }
    next.count = 1;
    for (size_t i = 0; i != old.count && next.count != RLY_KEYS_MAX; ++i)
        next.keys[next.count++] = old.keys[i];
    if ((len = format_key_file(text, sizeof(text), &next)) < 0) {
        seterr(err, errlen, "cannot format the key file");
        goto Exit;
    }

    if (!rotate) {
        if ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600)) < 0) {
            seterr(err, errlen, errno == EEXIST ? "key file %s already exists (use --rotate to add a key)" : "cannot create %s: %s",
                   path, strerror(errno));
            goto Exit;
        }
        created = 1;
    } else {
        if ((tmp = malloc(pathlen + sizeof(".XXXXXX"))) == NULL) {
            seterr(err, errlen, "out of memory");
            goto Exit;
        }
        memcpy(tmp, path, pathlen);
        memcpy(tmp + pathlen, ".XXXXXX", sizeof(".XXXXXX"));
        if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) {
            seterr(err, errlen, "cannot create a temporary file next to %s: %s", path, strerror(errno));
            goto Exit;
        }
        created = 1;
    }
    if (fchmod(fd, 0600) != 0 || write_all(fd, text, (size_t)len) != 0 || fsync(fd) != 0) {
        seterr(err, errlen, "cannot write %s: %s", rotate ? tmp : path, strerror(errno));
        goto Exit;
    }
    if (close(fd) != 0) {
        fd = -1;
        seterr(err, errlen, "cannot write %s: %s", rotate ? tmp : path, strerror(errno));
        goto Exit;
    }
    fd = -1;
    if (rotate && rename(tmp, path) != 0) {
        seterr(err, errlen, "cannot replace %s: %s", path, strerror(errno));
        goto Exit;
    }
    sync_dir(path);
    ret = 0;
Exit:
    if (fd >= 0)
        close(fd);
    if (ret != 0 && created)
        unlink(rotate ? tmp : path);
    free(tmp);
    OPENSSL_cleanse(text, sizeof(text));
    OPENSSL_cleanse(&old, sizeof(old));
    OPENSSL_cleanse(&next, sizeof(next));
    return ret;
}

long rly_data_encrypt(const rly_keyring_t *kr, const void *aad, size_t aadlen, const uint8_t *pt, size_t len, uint8_t *out)
{
    if (kr->count == 0 || len > (size_t)LONG_MAX - RLY_DATA_OVERHEAD)
        return -1;
    out[0] = DATA_VERSION;
    if (rly_tc_random(out + 1, NONCE_LEN) != 0) /* 96 random bits from the CSPRNG, drawn from the thread's pool */
        return -1;
    if (rly_aes256gcm_encrypt(kr->keys[0].data_key, out + 1, aad, aadlen, pt, len, out + 1 + NONCE_LEN) != 0)
        return -1;
    return (long)(len + RLY_DATA_OVERHEAD);
}

long rly_data_decrypt(const rly_keyring_t *kr, const void *aad, size_t aadlen, const uint8_t *in, size_t len, uint8_t *out)
{
    if (len < RLY_DATA_OVERHEAD || len > (size_t)LONG_MAX || in[0] != DATA_VERSION)
        return -1;
    for (size_t i = 0; i != kr->count; ++i)
        if (rly_aes256gcm_decrypt(kr->keys[i].data_key, in + 1, aad, aadlen, in + 1 + NONCE_LEN, len - 1 - NONCE_LEN, out) == 0)
            return (long)(len - RLY_DATA_OVERHEAD);
    return -1;
}

/* test_keys.c: unit tests of the key file, keygen and rotation, sub-key derivation and data encryption (common/keys.c) */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "b64url.h"
#include "keys.h"
#include "seal.h"

/* master key 00..1f and what HKDF-SHA256 derives from it (computed independently with Python cryptography) */
#define MASTER0_B64 "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"
#define MASTER0_STATE_KEY "36161ad13c57ea95fff82a99d55ca2beb5c1f05a49288bf53679967445db705a"
#define MASTER0_DATA_KEY "9ae231857878d4e0b80e65095c078c4b064f6ed35841b2eb7532ddd0f7de3c14"
#define MASTER0_COOKIE_KEY "57efb2f84d8757898c158a83e1ccf1716d8ee5c2c24c0837870dfba57153c799"
#define MASTER0_CSRF_KEY "13a3d710e1b9eb1e7e7452317b23cbdf58ba9b83524f0259f6f81c424f2461e4"
#define MASTER1_B64 "ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8"
#define MASTER2_B64 "QEFCQ0RFRkdISUpLTE1OT1BRUlNUVVZXWFlaW1xdXl8"
#define MASTER3_B64 "YGFiY2RlZmdoaWprbG1ub3BxcnN0dXZ3eHl6e3x9fn8"

static char tmpdir[PATH_MAX];

static int setup(void **unused)
{
    (void)unused;
    const char *base = getenv("TMPDIR");
    snprintf(tmpdir, sizeof(tmpdir), "%s/test_keys.XXXXXX", base != NULL && base[0] != '\0' ? base : "/tmp");
    return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int teardown(void **unused)
{
    (void)unused;
    DIR *dir = opendir(tmpdir);
    struct dirent *e;
    char path[PATH_MAX + 256];

    if (dir == NULL)
        return -1;
    while ((e = readdir(dir)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", tmpdir, e->d_name);
        if (unlink(path) != 0)
            rmdir(path);
    }
    closedir(dir);
    return rmdir(tmpdir);
}

static void tmp_path(char *out, size_t cap, const char *name)
{
    int n = snprintf(out, cap, "%s/%s", tmpdir, name);
    assert_true(n > 0 && (size_t)n < cap);
}

/* writes a file of mode 0600 (what the loader takes whatever the umask; test_load_mode tries the others) */
static void write_file(const char *path, const char *text, size_t len)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(text, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(chmod(path, 0600), 0);
}

/* reads a file into buf (NUL-terminated); its length */
static size_t read_file(const char *path, char *buf, size_t cap)
{
    FILE *fp = fopen(path, "rb");
    assert_non_null(fp);
    size_t n = fread(buf, 1, cap - 1, fp);
    assert_int_equal(fclose(fp), 0);
    buf[n] = '\0';
    return n;
}

static void from_hex(uint8_t *out, const char *hex)
{
    for (size_t i = 0; hex[2 * i] != '\0'; ++i) {
        char b[3] = {hex[2 * i], hex[2 * i + 1], '\0'};
        out[i] = (uint8_t)strtol(b, NULL, 16);
    }
}

static void pattern(uint8_t *p, size_t n, uint8_t start)
{
    for (size_t i = 0; i != n; ++i)
        p[i] = (uint8_t)(start + i);
}

static void make_ring(rly_keyring_t *kr, const uint8_t *starts, size_t n)
{
    memset(kr, 0, sizeof(*kr));
    for (size_t i = 0; i != n; ++i) {
        uint8_t master[32];
        char id[8] = {'k', (char)('0' + i), '\0'};
        pattern(master, sizeof(master), starts[i]);
        assert_int_equal(rly_key_derive(&kr->keys[i], id, master), 0);
    }
    kr->count = n;
}

static int file_mode(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return (int)(st.st_mode & 07777);
}

/* the number of entries in tmpdir (a failed rotation must leave no temporary file behind) */
static size_t dir_entries(void)
{
    DIR *dir = opendir(tmpdir);
    struct dirent *e;
    size_t n = 0;

    assert_non_null(dir);
    while ((e = readdir(dir)) != NULL)
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            ++n;
    closedir(dir);
    return n;
}

static void remove_all(void)
{
    assert_int_equal(teardown(NULL), 0);
    assert_int_equal(mkdir(tmpdir, 0700), 0);
}

static void test_derive_known_answer(void **unused)
{
    (void)unused;
    uint8_t master[32], expect[32];
    rly_key_t key, key2;

    pattern(master, sizeof(master), 0x00);
    assert_int_equal(rly_key_derive(&key, "k20261129T053800", master), 0);
    assert_string_equal(key.id, "k20261129T053800");
    from_hex(expect, MASTER0_STATE_KEY);
    assert_memory_equal(key.state_key, expect, 32);
    from_hex(expect, MASTER0_DATA_KEY);
    assert_memory_equal(key.data_key, expect, 32);
    from_hex(expect, MASTER0_COOKIE_KEY);
    assert_memory_equal(key.cookie_key, expect, 32);
    from_hex(expect, MASTER0_CSRF_KEY);
    assert_memory_equal(key.csrf_key, expect, 32);

    /* deterministic, and another master gives other keys */
    assert_int_equal(rly_key_derive(&key2, "x", master), 0);
    assert_memory_equal(key2.state_key, key.state_key, 32);
    master[31] ^= 1;
    assert_int_equal(rly_key_derive(&key2, "x", master), 0);
    assert_memory_not_equal(key2.state_key, key.state_key, 32);
    assert_memory_not_equal(key2.data_key, key.data_key, 32);
}

/* one key per purpose: the four derived keys differ from each other and from the master, are the same for the same
 * master whatever the id, and all change with the master */
static void test_derive_one_key_per_purpose(void **unused)
{
    (void)unused;
    uint8_t master[32];
    rly_key_t a, b, c;

    for (int start = 0; start < 256; start += 51) {
        pattern(master, sizeof(master), (uint8_t)start);
        assert_int_equal(rly_key_derive(&a, "a", master), 0);
        assert_int_equal(rly_key_derive(&b, "b", master), 0);
        const uint8_t *ka[] = {a.state_key, a.data_key, a.cookie_key, a.csrf_key};
        const uint8_t *kb[] = {b.state_key, b.data_key, b.cookie_key, b.csrf_key};
        for (size_t i = 0; i != 4; ++i) {
            assert_memory_equal(ka[i], kb[i], 32); /* stable */
            assert_memory_not_equal(ka[i], master, 32);
            for (size_t j = i + 1; j != 4; ++j)
                assert_memory_not_equal(ka[i], ka[j], 32); /* distinct */
        }
        master[0] ^= 0x80;
        assert_int_equal(rly_key_derive(&c, "a", master), 0);
        const uint8_t *kc[] = {c.state_key, c.data_key, c.cookie_key, c.csrf_key};
        for (size_t i = 0; i != 4; ++i)
            assert_memory_not_equal(ka[i], kc[i], 32);
    }
}

static void test_ephemeral(void **unused)
{
    (void)unused;
    rly_keyring_t a, b;

    assert_int_equal(rly_keyring_ephemeral(&a), 0);
    assert_int_equal(rly_keyring_ephemeral(&b), 0);
    assert_int_equal(a.count, 1);
    assert_string_equal(a.keys[0].id, "ephemeral");
    assert_memory_not_equal(a.keys[0].state_key, b.keys[0].state_key, 32);
    assert_memory_not_equal(a.keys[0].data_key, b.keys[0].data_key, 32);
    assert_memory_not_equal(a.keys[0].state_key, a.keys[0].data_key, 32);
    assert_memory_not_equal(a.keys[0].cookie_key, b.keys[0].cookie_key, 32);
    assert_memory_not_equal(a.keys[0].csrf_key, b.keys[0].csrf_key, 32);
    assert_memory_not_equal(a.keys[0].cookie_key, a.keys[0].csrf_key, 32);
}

static void test_load_valid(void **unused)
{
    (void)unused;
    char path[PATH_MAX], err[256];
    rly_keyring_t kr;
    uint8_t expect[32];
    const char *text = "{\"version\": 1, \"keys\": [\n"
                       "  {\"id\": \"k20261129T053800\", \"key\": \"" MASTER0_B64 "\"},\n"
                       "  {\"key\": \"" MASTER1_B64 "\", \"id\": \"old_key-2\"},\n"
                       "  {\"id\": \"K3\", \"key\": \"" MASTER2_B64 "\"}\n"
                       "]}\n\n";

    tmp_path(path, sizeof(path), "valid.json");
    write_file(path, text, strlen(text));
    err[0] = '\0';
    assert_int_equal(rly_keyring_load(&kr, path, err, sizeof(err)), 0);
    assert_int_equal(kr.count, 3);
    assert_string_equal(kr.keys[0].id, "k20261129T053800");
    assert_string_equal(kr.keys[1].id, "old_key-2");
    assert_string_equal(kr.keys[2].id, "K3");
    from_hex(expect, MASTER0_STATE_KEY);
    assert_memory_equal(kr.keys[0].state_key, expect, 32);
    from_hex(expect, MASTER0_DATA_KEY);
    assert_memory_equal(kr.keys[0].data_key, expect, 32);

    /* one key, on one line */
    const char *one = "{\"keys\":[{\"id\":\"a\",\"key\":\"" MASTER3_B64 "\"}],\"version\":1}";
    write_file(path, one, strlen(one));
    assert_int_equal(rly_keyring_load(&kr, path, err, sizeof(err)), 0);
    assert_int_equal(kr.count, 1);
    assert_string_equal(kr.keys[0].id, "a");
}

typedef struct st_bad_file_t {
    const char *what;
    const char *text;
} bad_file_t;

#define ENTRY(id, key) "{\"id\": \"" id "\", \"key\": \"" key "\"}"
#define FILE_OF(entries) "{\"version\": 1, \"keys\": [" entries "]}"

static const bad_file_t bad_files[] = {
    {"empty file", ""},
    {"not JSON", "version = 1"},
    {"truncated", "{\"version\": 1, \"keys\": [" ENTRY("a", MASTER0_B64)},
    {"trailing comma", FILE_OF(ENTRY("a", MASTER0_B64) ",")},
    {"single quotes", "{'version': 1, 'keys': [{'id': 'a', 'key': '" MASTER0_B64 "'}]}"},
    {"comment", "/* keys */ " FILE_OF(ENTRY("a", MASTER0_B64))},
    {"data after the object", FILE_OF(ENTRY("a", MASTER0_B64)) " x"},
    {"two objects", FILE_OF(ENTRY("a", MASTER0_B64)) FILE_OF(ENTRY("b", MASTER1_B64))},
    {"an array", "[" FILE_OF(ENTRY("a", MASTER0_B64)) "]"},
    {"version missing", "{\"keys\": [" ENTRY("a", MASTER0_B64) "]}"},
    {"version 2", "{\"version\": 2, \"keys\": [" ENTRY("a", MASTER0_B64) "]}"},
    {"version a string", "{\"version\": \"1\", \"keys\": [" ENTRY("a", MASTER0_B64) "]}"},
    {"version a double", "{\"version\": 1.0, \"keys\": [" ENTRY("a", MASTER0_B64) "]}"},
    {"version a boolean", "{\"version\": true, \"keys\": [" ENTRY("a", MASTER0_B64) "]}"},
    {"keys missing", "{\"version\": 1}"},
    {"keys an object", "{\"version\": 1, \"keys\": " ENTRY("a", MASTER0_B64) "}"},
    {"no keys", FILE_OF("")},
    {"more than 3 keys",
     FILE_OF(ENTRY("a", MASTER0_B64) "," ENTRY("b", MASTER1_B64) "," ENTRY("c", MASTER2_B64) "," ENTRY("d", MASTER3_B64))},
    {"unknown top-level member", "{\"version\": 1, \"comment\": \"x\", \"keys\": [" ENTRY("a", MASTER0_B64) "]}"},
    {"entry not an object", FILE_OF("\"" MASTER0_B64 "\"")},
    {"unknown entry member", FILE_OF("{\"id\": \"a\", \"key\": \"" MASTER0_B64 "\", \"alg\": \"x\"}")},
    {"key missing", FILE_OF("{\"id\": \"a\"}")},
    {"key not a string", FILE_OF("{\"id\": \"a\", \"key\": 12345}")},
    {"key of 31 bytes", FILE_OF(ENTRY("a", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg"))},
    {"key of 33 bytes", FILE_OF(ENTRY("a", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8g"))},
    {"key with padding", FILE_OF(ENTRY("a", MASTER0_B64 "="))},
    {"key in standard base64", FILE_OF(ENTRY("a", "+AECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"))},
    {"key non-canonical", FILE_OF(ENTRY("a", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9"))},
    {"key empty", FILE_OF(ENTRY("a", ""))},
    {"id missing", FILE_OF("{\"key\": \"" MASTER0_B64 "\"}")},
    {"id not a string", FILE_OF("{\"id\": 1, \"key\": \"" MASTER0_B64 "\"}")},
    {"id empty", FILE_OF(ENTRY("", MASTER0_B64))},
    {"id of 33 characters", FILE_OF(ENTRY("k12345678901234567890123456789012", MASTER0_B64))},
    {"id with a space", FILE_OF(ENTRY("k 1", MASTER0_B64))},
    {"id with a slash", FILE_OF(ENTRY("../k1", MASTER0_B64))},
    {"id with an escaped NUL", FILE_OF(ENTRY("k\\u0000x", MASTER0_B64))},
    {"duplicate ids", FILE_OF(ENTRY("same", MASTER0_B64) "," ENTRY("same", MASTER1_B64))},
    {"duplicate ids, not adjacent", FILE_OF(ENTRY("a", MASTER0_B64) "," ENTRY("b", MASTER1_B64) "," ENTRY("a", MASTER2_B64))},
};

static void assert_load_fails(const char *path, const char *what)
{
    rly_keyring_t kr, orig;
    char err[512];

    memset(&kr, 0x5a, sizeof(kr));
    memcpy(&orig, &kr, sizeof(kr));
    err[0] = '\0';
    if (rly_keyring_load(&kr, path, err, sizeof(err)) != -1)
        fail_msg("loaded a key file with %s", what);
    assert_true(strlen(err) > 0);
    /* no key material in the message: no prefix of any key's text */
    assert_null(strstr(err, "AAECAwQF"));
    assert_null(strstr(err, "ICEiIyQl"));
    assert_null(strstr(err, "QEFCQ0RF"));
    assert_null(strstr(err, "YGFiY2Rl"));
    assert_memory_equal(&kr, &orig, sizeof(kr)); /* untouched on failure */
}

static void test_load_errors(void **unused)
{
    (void)unused;
    char path[PATH_MAX];

    tmp_path(path, sizeof(path), "bad.json");
    for (size_t i = 0; i != sizeof(bad_files) / sizeof(bad_files[0]); ++i) {
        write_file(path, bad_files[i].text, strlen(bad_files[i].text));
        assert_load_fails(path, bad_files[i].what);
    }

    /* a NUL byte inside the text */
    static const char with_nul[] = FILE_OF(ENTRY("a", MASTER0_B64)) "\0";
    write_file(path, with_nul, sizeof(with_nul) - 1);
    assert_load_fails(path, "a NUL byte");

    /* a file larger than any key file (valid JSON, padded with spaces) */
    static char big[8192];
    const char *valid = FILE_OF(ENTRY("a", MASTER0_B64));
    memset(big, ' ', sizeof(big));
    memcpy(big, valid, strlen(valid));
    write_file(path, big, sizeof(big));
    assert_load_fails(path, "8 KiB of data");
    /* the same file cut to a normal size loads: the size is what failed */
    write_file(path, big, 1024);
    rly_keyring_t kr;
    char err[256];
    assert_int_equal(rly_keyring_load(&kr, path, err, sizeof(err)), 0);

    /* a missing file: the message names it */
    tmp_path(path, sizeof(path), "missing.json");
    memset(err, 0, sizeof(err));
    assert_int_equal(rly_keyring_load(&kr, path, err, sizeof(err)), -1);
    assert_non_null(strstr(err, path));
    /* a directory */
    assert_load_fails(tmpdir, "a directory");
    /* no room for a message is not an error of its own */
    assert_int_equal(rly_keyring_load(&kr, path, NULL, 0), -1);
}

/* checks an id made by keygen: "k" + YYYYMMDD "T" HHMMSS + "-" + 4 of [a-z0-9], near the current UTC time */
static void assert_generated_id(const char *id)
{
    char now[32], before[32];
    time_t t = time(NULL), t0 = t - 5;
    struct tm tm;

    assert_int_equal(strlen(id), 21);
    assert_true(rly_b64url_is_charset(id, strlen(id)));
    assert_int_equal(id[0], 'k');
    assert_int_equal(id[9], 'T');
    assert_int_equal(id[16], '-');
    for (size_t i = 17; i != 21; ++i)
        assert_true((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9'));
    assert_non_null(gmtime_r(&t, &tm));
    assert_true(strftime(now, sizeof(now), "k%Y%m%dT%H%M%S", &tm) > 0);
    assert_non_null(gmtime_r(&t0, &tm));
    assert_true(strftime(before, sizeof(before), "k%Y%m%dT%H%M%S", &tm) > 0);
    assert_true(strncmp(id, now, 16) <= 0);
    assert_true(strncmp(id, before, 16) >= 0);
}

static void test_keygen_new(void **unused)
{
    (void)unused;
    char path[PATH_MAX], err[512], before[1024], after[1024];
    rly_keyring_t kr;
    mode_t old_umask;

    remove_all();
    tmp_path(path, sizeof(path), "relay.keys");
    old_umask = umask(0);
    assert_int_equal(rly_keygen(path, 0, err, sizeof(err)), 0);
    umask(old_umask);
    assert_int_equal(file_mode(path), 0600);
    assert_int_equal(rly_keyring_load(&kr, path, err, sizeof(err)), 0);
    assert_int_equal(kr.count, 1);
    assert_generated_id(kr.keys[0].id);
    assert_int_equal(dir_entries(), 1);

    /* refuses to overwrite, and leaves the file as it was */
    size_t n = read_file(path, before, sizeof(before));
    err[0] = '\0';
    assert_int_equal(rly_keygen(path, 0, err, sizeof(err)), -1);
    assert_non_null(strstr(err, "exists"));
    assert_int_equal(read_file(path, after, sizeof(after)), n);
    assert_memory_equal(before, after, n);

    /* not even a file that is not a key file, nor through a dangling symlink */
    char other[PATH_MAX], link[PATH_MAX];
    tmp_path(other, sizeof(other), "notes.txt");
    write_file(other, "hello", 5);
    assert_int_equal(rly_keygen(other, 0, err, sizeof(err)), -1);
    assert_int_equal(read_file(other, after, sizeof(after)), 5);
    tmp_path(link, sizeof(link), "dangling");
    char target[PATH_MAX];
    tmp_path(target, sizeof(target), "target-does-not-exist");
    assert_int_equal(symlink(target, link), 0);
    assert_int_equal(rly_keygen(link, 0, err, sizeof(err)), -1);
    assert_int_equal(access(target, F_OK), -1);

    /* a new key each time */
    char path2[PATH_MAX];
    rly_keyring_t kr2;
    tmp_path(path2, sizeof(path2), "relay2.keys");
    old_umask = umask(0277); /* a umask that takes the owner's write bit: the file is 0600 all the same */
    assert_int_equal(rly_keygen(path2, 0, err, sizeof(err)), 0);
    umask(old_umask);
    assert_int_equal(file_mode(path2), 0600);
    assert_int_equal(rly_keyring_load(&kr2, path2, err, sizeof(err)), 0);
    assert_string_not_equal(kr.keys[0].id, kr2.keys[0].id);
    assert_memory_not_equal(kr.keys[0].state_key, kr2.keys[0].state_key, 32);

    /* a directory that does not exist */
    tmp_path(path2, sizeof(path2), "no/such/dir.keys");
    assert_int_equal(rly_keygen(path2, 0, err, sizeof(err)), -1);
}

static void test_keygen_rotate(void **unused)
{
    (void)unused;
    char path[PATH_MAX], err[512];
    rly_keyring_t prev, kr;

    remove_all();
    tmp_path(path, sizeof(path), "relay.keys");
    assert_int_equal(rly_keygen(path, 0, err, sizeof(err)), 0);
    assert_int_equal(rly_keyring_load(&prev, path, err, sizeof(err)), 0);

    for (size_t round = 1; round != 6; ++round) {
        /* a loose mode before: the rotated file is 0600 all the same */
        assert_int_equal(chmod(path, 0644), 0);
        assert_int_equal(rly_keygen(path, 1, err, sizeof(err)), 0);
        assert_int_equal(file_mode(path), 0600);
        assert_int_equal(dir_entries(), 1); /* no temporary file left */
        assert_int_equal(rly_keyring_load(&kr, path, err, sizeof(err)), 0);
        assert_int_equal(kr.count, round + 1 < RLY_KEYS_MAX ? round + 1 : RLY_KEYS_MAX);
        assert_generated_id(kr.keys[0].id);
        /* the new key is first, the previous ones follow in order, the oldest beyond 3 is dropped */
        for (size_t i = 0; i != kr.count; ++i)
            for (size_t j = i + 1; j != kr.count; ++j)
                assert_string_not_equal(kr.keys[i].id, kr.keys[j].id);
        for (size_t i = 1; i != kr.count; ++i) {
            assert_string_equal(kr.keys[i].id, prev.keys[i - 1].id);
            assert_memory_equal(kr.keys[i].state_key, prev.keys[i - 1].state_key, 32);
            assert_memory_equal(kr.keys[i].data_key, prev.keys[i - 1].data_key, 32);
        }
        for (size_t i = 0; i != prev.count; ++i)
            assert_memory_not_equal(kr.keys[0].state_key, prev.keys[i].state_key, 32);
        prev = kr;
    }
}

static void test_keygen_rotate_errors(void **unused)
{
    (void)unused;
    char path[PATH_MAX], err[512], after[256];
    const char *broken = "{\"version\": 1, \"keys\": []}";

    remove_all();
    /* nothing to rotate */
    tmp_path(path, sizeof(path), "missing.keys");
    assert_int_equal(rly_keygen(path, 1, err, sizeof(err)), -1);
    assert_int_equal(access(path, F_OK), -1);
    assert_int_equal(dir_entries(), 0);

    /* an invalid file is left alone */
    tmp_path(path, sizeof(path), "broken.keys");
    write_file(path, broken, strlen(broken));
    assert_int_equal(rly_keygen(path, 1, err, sizeof(err)), -1);
    assert_int_equal(read_file(path, after, sizeof(after)), strlen(broken));
    assert_string_equal(after, broken);
    assert_int_equal(dir_entries(), 1);

    /* a full file of hand-written keys rotates: the last is dropped, the key material is kept */
    const char *full = FILE_OF(ENTRY("a", MASTER0_B64) "," ENTRY("b", MASTER1_B64) "," ENTRY("c", MASTER2_B64));
    rly_keyring_t before, kr;
    write_file(path, full, strlen(full));
    assert_int_equal(rly_keyring_load(&before, path, err, sizeof(err)), 0);
    assert_int_equal(rly_keygen(path, 1, err, sizeof(err)), 0);
    assert_int_equal(rly_keyring_load(&kr, path, err, sizeof(err)), 0);
    assert_int_equal(kr.count, 3);
    assert_string_equal(kr.keys[1].id, "a");
    assert_string_equal(kr.keys[2].id, "b");
    assert_memory_equal(&kr.keys[1], &before.keys[0], sizeof(rly_key_t));
    assert_memory_equal(&kr.keys[2], &before.keys[1], sizeof(rly_key_t));
}

static void test_data_round_trip(void **unused)
{
    (void)unused;
    rly_keyring_t kr;
    uint8_t pt[1000], out[1000 + RLY_DATA_OVERHEAD], out2[1000 + RLY_DATA_OVERHEAD], back[1000 + RLY_DATA_OVERHEAD];
    static const size_t lens[] = {0, 1, 15, 16, 17, 100, 1000};
    const char *aad = "AAECAwQFBgcICQoLDA0ODw";

    assert_int_equal(rly_keyring_ephemeral(&kr), 0);
    pattern(pt, sizeof(pt), 0x33);
    for (size_t i = 0; i != sizeof(lens) / sizeof(lens[0]); ++i) {
        size_t len = lens[i];
        assert_int_equal(rly_data_encrypt(&kr, aad, strlen(aad), pt, len, out), (long)(len + RLY_DATA_OVERHEAD));
        assert_int_equal(out[0], 0x01);
        if (len >= 16)
            assert_memory_not_equal(out + 13, pt, 16); /* not stored in the clear */
        memset(back, 0, sizeof(back));
        assert_int_equal(rly_data_decrypt(&kr, aad, strlen(aad), out, len + RLY_DATA_OVERHEAD, back), (long)len);
        assert_memory_equal(back, pt, len);
        /* the format is 0x01 || nonce || AES-256-GCM(data_key) ct || tag */
        assert_int_equal(rly_aes256gcm_decrypt(kr.keys[0].data_key, out + 1, aad, strlen(aad), out + 13, len + 16, back), 0);
        assert_memory_equal(back, pt, len);
        /* a fresh nonce each time */
        assert_int_equal(rly_data_encrypt(&kr, aad, strlen(aad), pt, len, out2), (long)(len + RLY_DATA_OVERHEAD));
        assert_memory_not_equal(out + 1, out2 + 1, 12);
    }
    /* no AAD at all */
    assert_int_equal(rly_data_encrypt(&kr, NULL, 0, pt, 10, out), 10 + RLY_DATA_OVERHEAD);
    assert_int_equal(rly_data_decrypt(&kr, NULL, 0, out, 10 + RLY_DATA_OVERHEAD, back), 10);
    assert_memory_equal(back, pt, 10);
}

static void test_data_rotation(void **unused)
{
    (void)unused;
    rly_keyring_t old_ring, new_ring, rotated, three;
    uint8_t pt[64], out[64 + RLY_DATA_OVERHEAD], back[64 + RLY_DATA_OVERHEAD];
    static const uint8_t old_start[] = {0x10}, new_start[] = {0x80}, rotated_starts[] = {0x80, 0x10},
                         three_starts[] = {0xc0, 0x80, 0x10};
    const long outlen = (long)sizeof(out);

    make_ring(&old_ring, old_start, 1);
    make_ring(&new_ring, new_start, 1);
    make_ring(&rotated, rotated_starts, 2);
    make_ring(&three, three_starts, 3);
    pattern(pt, sizeof(pt), 0x01);

    assert_int_equal(rly_data_encrypt(&old_ring, "s", 1, pt, sizeof(pt), out), outlen);
    assert_int_equal(rly_data_decrypt(&rotated, "s", 1, out, sizeof(out), back), (long)sizeof(pt));
    assert_memory_equal(back, pt, sizeof(pt));
    assert_int_equal(rly_data_decrypt(&three, "s", 1, out, sizeof(out), back), (long)sizeof(pt));
    assert_int_equal(rly_data_decrypt(&new_ring, "s", 1, out, sizeof(out), back), -1);

    /* the rotated ring encrypts under its first key only */
    assert_int_equal(rly_data_encrypt(&rotated, "s", 1, pt, sizeof(pt), out), outlen);
    assert_int_equal(rly_data_decrypt(&new_ring, "s", 1, out, sizeof(out), back), (long)sizeof(pt));
    assert_int_equal(rly_data_decrypt(&old_ring, "s", 1, out, sizeof(out), back), -1);

    /* an empty ring neither encrypts nor decrypts */
    rly_keyring_t empty;
    memset(&empty, 0, sizeof(empty));
    assert_int_equal(rly_data_encrypt(&empty, "s", 1, pt, sizeof(pt), out), -1);
    assert_int_equal(rly_data_encrypt(&rotated, "s", 1, pt, sizeof(pt), out), outlen);
    assert_int_equal(rly_data_decrypt(&empty, "s", 1, out, sizeof(out), back), -1);
}

static void test_data_tamper(void **unused)
{
    (void)unused;
    rly_keyring_t kr;
    uint8_t pt[40], out[40 + RLY_DATA_OVERHEAD], back[40 + RLY_DATA_OVERHEAD];
    const char *aad = "AAECAwQFBgcICQoLDA0ODw";

    assert_int_equal(rly_keyring_ephemeral(&kr), 0);
    pattern(pt, sizeof(pt), 0x70);
    assert_int_equal(rly_data_encrypt(&kr, aad, strlen(aad), pt, sizeof(pt), out), (long)sizeof(out));
    for (size_t i = 0; i != sizeof(out); ++i) {
        for (int bit = 0; bit != 8; ++bit) {
            out[i] ^= (uint8_t)(1 << bit);
            assert_int_equal(rly_data_decrypt(&kr, aad, strlen(aad), out, sizeof(out), back), -1);
            out[i] ^= (uint8_t)(1 << bit);
        }
    }
    for (size_t len = 0; len != sizeof(out); ++len)
        assert_int_equal(rly_data_decrypt(&kr, aad, strlen(aad), out, len, back), -1);
    /* wrong, shortened, longer and missing AAD */
    assert_int_equal(rly_data_decrypt(&kr, "AAECAwQFBgcICQoLDA0ODg", 22, out, sizeof(out), back), -1);
    assert_int_equal(rly_data_decrypt(&kr, aad, strlen(aad) - 1, out, sizeof(out), back), -1);
    assert_int_equal(rly_data_decrypt(&kr, "AAECAwQFBgcICQoLDA0ODwA", 23, out, sizeof(out), back), -1);
    assert_int_equal(rly_data_decrypt(&kr, NULL, 0, out, sizeof(out), back), -1);
    /* untouched, it still opens: the failures above were the tampering */
    assert_int_equal(rly_data_decrypt(&kr, aad, strlen(aad), out, sizeof(out), back), (long)sizeof(pt));
    assert_memory_equal(back, pt, sizeof(pt));
}

/* ---- the key file's owner and mode (PostgreSQL's rule for ssl_key_file) ---- */

#define ONE_KEY "{\"version\": 1, \"keys\": [{\"id\": \"a\", \"key\": \"" MASTER0_B64 "\"}]}"
#define OTHER_UID 12345 /* a user that owns nothing on the machine */

/* a valid key file at path with this mode (and, when uid != (uid_t)-1, this owner and group: root only) */
static void key_file_as(const char *path, mode_t mode, uid_t uid, gid_t gid)
{
    write_file(path, ONE_KEY, strlen(ONE_KEY));
    if (uid != (uid_t)-1)
        assert_int_equal(chown(path, uid, gid), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void assert_mode_ok_at(const char *path, int line)
{
    rly_keyring_t kr;
    char err[512] = "";
    if (rly_keyring_load(&kr, path, err, sizeof(err)) != 0)
        fail_msg("line %d: mode %04o refused (euid %u): %s", line, (unsigned)file_mode(path), (unsigned)geteuid(), err);
    assert_int_equal(kr.count, 1);
}
#define assert_mode_ok(path) assert_mode_ok_at(path, __LINE__)

/* refused with exactly the message "key file <path> <text>" */
static void assert_mode_refused_at(const char *path, const char *text, int line)
{
    rly_keyring_t kr, orig;
    char err[512] = "", want[PATH_MAX + 256];
    memset(&kr, 0x5a, sizeof(kr));
    memcpy(&orig, &kr, sizeof(kr));
    snprintf(want, sizeof(want), "key file %s %s", path, text);
    if (rly_keyring_load(&kr, path, err, sizeof(err)) != -1)
        fail_msg("line %d: mode %04o accepted (euid %u)", line, (unsigned)file_mode(path), (unsigned)geteuid());
    if (strcmp(err, want) != 0)
        fail_msg("line %d: expected \"%s\", got \"%s\"", line, want, err);
    assert_memory_equal(&kr, &orig, sizeof(kr));
}
#define assert_mode_refused(path, text) assert_mode_refused_at(path, text, __LINE__)

/* the rule for a file owned by the process's own user (not root): the owner's bits only, 0600 or 0400 */
static void own_user_rule(const char *path)
{
    static const mode_t ok[] = {0600, 0400};
    static const struct {
        mode_t mode;
        const char *text;
    } refused[] = {
        {0640, "has mode 0640: it must not be readable by its group unless root owns it (chmod 600)"},
        {0440, "has mode 0440: it must not be readable by its group unless root owns it (chmod 600)"},
        {0620, "has mode 0620: it must not be readable by its group unless root owns it (chmod 600)"},
        {0610, "has mode 0610: it must not be readable by its group unless root owns it (chmod 600)"},
        {0644, "has mode 0644: it must not be readable by others (chmod 600)"},
        {0604, "has mode 0604: it must not be readable by others (chmod 600)"},
        {0602, "has mode 0602: it must not be accessible by others (chmod 600)"},
    };
    for (size_t i = 0; i != sizeof(ok) / sizeof(ok[0]); ++i) {
        assert_int_equal(chmod(path, ok[i]), 0);
        assert_mode_ok(path);
    }
    for (size_t i = 0; i != sizeof(refused) / sizeof(refused[0]); ++i) {
        assert_int_equal(chmod(path, refused[i].mode), 0);
        assert_mode_refused(path, refused[i].text);
    }
}

/*
 * As root (CI): root-owned files by the root rule, a file of another owner refused, and the own-user rule and a
 * Kubernetes-style mount (root:fsGroup 0440) as OTHER_UID through seteuid. As another user only the own-user rule and
 * "others" can be produced (no root-owned file of ours, no chown): the root cases are skipped then, and said so.
 */
static void test_load_mode(void **unused)
{
    (void)unused;
    char path[PATH_MAX], want[128];

    remove_all();
    tmp_path(path, sizeof(path), "mode.json");
    key_file_as(path, 0600, (uid_t)-1, (gid_t)-1);

    if (geteuid() != 0) {
        own_user_rule(path);
        print_message("test_load_mode: not root: the root-owned and other-owner cases are skipped\n");
        return;
    }

    /* root-owned, root process: group read allowed, nothing more; never anything for others */
    static const mode_t root_ok[] = {0600, 0400, 0640, 0440};
    for (size_t i = 0; i != sizeof(root_ok) / sizeof(root_ok[0]); ++i) {
        assert_int_equal(chmod(path, root_ok[i]), 0);
        assert_mode_ok(path);
    }
    static const struct {
        mode_t mode;
        const char *text;
    } root_refused[] = {
        {0660, "has mode 0660: owned by root, it may be readable by its group, nothing more (chmod 640)"},
        {0650, "has mode 0650: owned by root, it may be readable by its group, nothing more (chmod 640)"},
        {0644, "has mode 0644: it must not be readable by others (chmod 600)"},
        {0444, "has mode 0444: it must not be readable by others (chmod 600)"},
        {0641, "has mode 0641: it must not be accessible by others (chmod 600)"},
    };
    for (size_t i = 0; i != sizeof(root_refused) / sizeof(root_refused[0]); ++i) {
        assert_int_equal(chmod(path, root_refused[i].mode), 0);
        assert_mode_refused(path, root_refused[i].text);
    }

    /* another owner: refused whatever the mode */
    key_file_as(path, 0600, OTHER_UID, OTHER_UID);
    snprintf(want, sizeof(want), "is owned by uid %d: it must be owned by the user the relay runs as (uid 0) or by root",
             OTHER_UID);
    assert_mode_refused(path, want);
    assert_int_equal(chmod(path, 0400), 0);
    assert_mode_refused(path, want);

    /* as OTHER_UID: its own file by the own-user rule; a root-owned file of its group 0440 (Kubernetes: a secret with
     * defaultMode 0440 and fsGroup) taken, with group write refused */
    char k8s[PATH_MAX], k8s_gw[PATH_MAX];
    tmp_path(k8s, sizeof(k8s), "k8s.json");
    tmp_path(k8s_gw, sizeof(k8s_gw), "k8s-gw.json");
    key_file_as(path, 0600, OTHER_UID, OTHER_UID);
    key_file_as(k8s, 0440, 0, OTHER_UID);
    key_file_as(k8s_gw, 0460, 0, OTHER_UID);
    assert_int_equal(chmod(tmpdir, 0711), 0);
    assert_int_equal(setegid(OTHER_UID), 0);
    assert_int_equal(seteuid(OTHER_UID), 0);
    own_user_rule(path);
    assert_int_equal(chmod(path, 0600), 0);
    assert_mode_ok(k8s);
    assert_mode_refused(k8s_gw, "has mode 0460: owned by root, it may be readable by its group, nothing more (chmod 640)");
    assert_int_equal(seteuid(0), 0);
    assert_int_equal(setegid(0), 0);
    assert_int_equal(chmod(tmpdir, 0700), 0);
}

/* keygen --rotate reads a file of any mode (it repairs it): the new file is 0600, owned by the process's user */
static void test_rotate_loose_mode(void **unused)
{
    (void)unused;
    char path[PATH_MAX], err[512];
    rly_keyring_t kr;

    remove_all();
    tmp_path(path, sizeof(path), "loose.json");
    key_file_as(path, 0644, (uid_t)-1, (gid_t)-1);
    assert_int_equal(rly_keyring_load(&kr, path, err, sizeof(err)), -1);
    assert_int_equal(rly_keygen(path, 1, err, sizeof(err)), 0);
    assert_int_equal(file_mode(path), 0600);
    assert_int_equal(rly_keyring_load(&kr, path, err, sizeof(err)), 0);
    assert_int_equal(kr.count, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_derive_known_answer), cmocka_unit_test(test_derive_one_key_per_purpose),
        cmocka_unit_test(test_ephemeral),           cmocka_unit_test(test_load_valid),
        cmocka_unit_test(test_load_errors),         cmocka_unit_test(test_keygen_new),
        cmocka_unit_test(test_keygen_rotate),       cmocka_unit_test(test_keygen_rotate_errors),
        cmocka_unit_test(test_data_round_trip),     cmocka_unit_test(test_data_rotation),
        cmocka_unit_test(test_data_tamper),         cmocka_unit_test(test_load_mode),
        cmocka_unit_test(test_rotate_loose_mode),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}

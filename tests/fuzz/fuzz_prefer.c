/* fuzz_prefer.c: libFuzzer target for the Prefer: wait=N parser (rly_prefer_wait, common/prefer.c) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prefer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                                                \
    do {                                                                                                                           \
        if (!(cond))                                                                                                               \
            abort();                                                                                                               \
    } while (0)

static int blank(char c)
{
    return c == ' ' || c == '\t';
}

/*
 * An independent reading of the rule in prefer.h: split at every ',' and ';'; trim blanks (and the separators' runs)
 * around each piece; the first piece "wait=" (any case) + 1 to 6 digits, or the same in double quotes, gives the wait.
 */
static long reference(const char *v, size_t len)
{
    size_t start = 0;

    while (start <= len) {
        size_t end = start;
        while (end < len && v[end] != ',' && v[end] != ';')
            ++end;
        size_t a = start, b = end;
        while (a < b && blank(v[a]))
            ++a;
        while (b > a && blank(v[b - 1]))
            --b;
        if (b - a > 5 && (v[a] | 0x20) == 'w' && (v[a + 1] | 0x20) == 'a' && (v[a + 2] | 0x20) == 'i' && (v[a + 3] | 0x20) == 't' &&
            v[a + 4] == '=') {
            size_t d = a + 5, e = b, i;
            long n = 0;
            if (e - d >= 2 && v[d] == '"' && v[e - 1] == '"') {
                ++d;
                --e;
            }
            for (i = d; i != e && i - d != 7 && v[i] >= '0' && v[i] <= '9'; ++i)
                n = n * 10 + (v[i] - '0');
            if (e - d >= 1 && e - d <= 6 && i == e)
                return n;
        }
        start = end + 1;
    }
    return -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a copy of exactly the input's size, so that ASan sees any read past it */
    char *src = malloc(size != 0 ? size : 1), *longer = malloc(size + 16);
    long r, again;
    int n;

    if (src == NULL || longer == NULL)
        goto Exit;
    if (size != 0)
        memcpy(src, data, size);
    r = rly_prefer_wait(src, size);
    CHECK(r >= -1 && r <= 999999);
    CHECK(r == reference(src, size));
    /* a wait found is written in the input: "wait=" and its digits (leading zeros aside) */
    if (r >= 0) {
        char digits[8];
        n = snprintf(digits, sizeof(digits), "%ld", r);
        CHECK(size >= 6 && n > 0 && memmem(src, size, digits, (size_t)n) != NULL);
    }
    /* the two variants below cost three passes over a copy: checked for an input whose size is a multiple of 4 (the size
     * chooses, not a byte of the value, which would tie them to one kind of value: one ending in '"', say) */
    if (size % 4 != 0)
        goto Exit;
    /* a preference after the input: the input's own wait when it has one, else that one (the input's pieces end the
     * same at a ',' as at the end) */
    memcpy(longer, src, size);
    n = snprintf(longer + size, 16, ", wait=%u", size != 0 ? data[0] % 100u : 42u);
    CHECK(n > 0 && n < 16);
    again = rly_prefer_wait(longer, size + (size_t)n);
    CHECK(again == (r >= 0 ? r : (long)(size != 0 ? data[0] % 100u : 42u)));
    /* a ',' or ';' in front changes nothing */
    longer[0] = size != 0 && (data[0] & 1) ? ';' : ',';
    memcpy(longer + 1, src, size);
    CHECK(rly_prefer_wait(longer, size + 1) == r);
Exit:
    free(src);
    free(longer);
    return 0;
}

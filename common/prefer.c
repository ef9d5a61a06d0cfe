/* prefer.c: the wait preference of a Prefer header value (RFC 7240, "wait=N"); no I/O, no allocation */
#include "prefer.h"

/* s[0..5) is "wait=" in any case */
static int is_wait(const char *s)
{
    static const char word[] = "wait=";
    size_t i;

    for (i = 0; i != sizeof(word) - 1; ++i) {
        char c = s[i] >= 'A' && s[i] <= 'Z' ? (char)(s[i] - 'A' + 'a') : s[i];
        if (c != word[i])
            return 0;
    }
    return 1;
}

long rly_prefer_wait(const char *v, size_t len)
{
    size_t pos = 0;

    while (pos < len) {
        while (pos < len && (v[pos] == ' ' || v[pos] == ',' || v[pos] == ';' || v[pos] == '\t'))
            ++pos;
        size_t start = pos;
        while (pos < len && v[pos] != ',' && v[pos] != ';')
            ++pos;
        size_t end = pos;
        while (end > start && (v[end - 1] == ' ' || v[end - 1] == '\t'))
            --end;
        if (end - start > 5 && is_wait(v + start)) {
            long n = 0;
            size_t d = start + 5;
            if (d < end && v[d] == '"' && end - d >= 2 && v[end - 1] == '"') {
                ++d;
                --end;
            }
            if (d == end || end - d > 6)
                continue;
            for (; d != end; ++d) {
                if (v[d] < '0' || v[d] > '9')
                    break;
                n = n * 10 + (v[d] - '0');
            }
            if (d == end)
                return n;
        }
    }
    return -1;
}

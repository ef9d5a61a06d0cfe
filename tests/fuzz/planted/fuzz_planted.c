/* fuzz_planted.c: fuzz_prefer with a planted bug, for tests/fuzz/smoke.sh --self-test only: a crash (PLANTED_crash), a
 * leak (PLANTED_leak) or a hang (PLANTED_timeout) on any input whose wait ends in 7, which the fuzzer finds from
 * fuzz_prefer's seeds ("wait=5") within a second or so. The smoke run must fail on each. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "prefer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* the healthy harness, under another name */
#define LLVMFuzzerTestOneInput healthy_test_one_input
#include "../fuzz_prefer.c"
#undef LLVMFuzzerTestOneInput

static void planted(void)
{
#if defined(PLANTED_crash)
    abort();
#elif defined(PLANTED_leak)
    char *volatile lost = malloc(64);
    if (lost != NULL)
        memset(lost, 7, 64);
    lost = NULL;
#elif defined(PLANTED_timeout)
    for (volatile unsigned long spin = 0;; spin = spin + 1)
        ;
#else
#error "define PLANTED_crash, PLANTED_leak or PLANTED_timeout"
#endif
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long wait = rly_prefer_wait((const char *)data, size);

    if (wait >= 0 && wait % 10 == 7)
        planted();
    return healthy_test_one_input(data, size);
}

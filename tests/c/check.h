/* A tiny test harness: CHECK counts passes and failures; REPORT prints "N passed, N failed". */
#ifndef AXONAL_TEST_CHECK_H
#define AXONAL_TEST_CHECK_H

#include <stdio.h>

static int checks_passed = 0;
static int checks_failed = 0;

#define CHECK(cond, ...)                                                                   \
    do {                                                                                   \
        if (cond) {                                                                        \
            checks_passed++;                                                               \
        } else {                                                                           \
            checks_failed++;                                                               \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);                \
            fprintf(stderr, __VA_ARGS__);                                                  \
            fprintf(stderr, "\n");                                                         \
        }                                                                                  \
    } while (0)

#define REPORT()                                                                           \
    (printf("%d passed, %d failed\n", checks_passed, checks_failed), checks_failed == 0 ? 0 : 1)

#endif

/*
 * check.h — the unit-test harness: each CHECK prints nothing when it holds and
 * one "FAIL file:line: expr" line when it does not; TEST_END prints
 * "ok NAME" or "FAIL NAME" so tests/run.sh can count.  Exit status is the
 * number of failed tests (capped at 1).
 */
#ifndef PA_CHECK_H
#define PA_CHECK_H

#include <stdio.h>
#include <string.h>

static int check_failed_tests;
static int check_cur_fails;

#define CHECK(expr)                                                                        \
    do {                                                                                   \
        if (!(expr)) {                                                                     \
            fprintf(stdout, "  FAIL %s:%d: %s\n", __FILE__, __LINE__, #expr);              \
            check_cur_fails++;                                                             \
        }                                                                                  \
    } while (0)

#define CHECK_EQ_U64(a, b)                                                                 \
    do {                                                                                   \
        unsigned long long a_ = (unsigned long long)(a), b_ = (unsigned long long)(b);     \
        if (a_ != b_) {                                                                    \
            fprintf(stdout, "  FAIL %s:%d: %s == %s (%llu != %llu)\n", __FILE__, __LINE__, \
                    #a, #b, a_, b_);                                                       \
            check_cur_fails++;                                                             \
        }                                                                                  \
    } while (0)

#define CHECK_STREQ(a, b)                                                                  \
    do {                                                                                   \
        const char *a_ = (a), *b_ = (b);                                                   \
        if (!a_ || !b_ || strcmp(a_, b_) != 0) {                                           \
            fprintf(stdout, "  FAIL %s:%d: %s == %s (\"%s\" != \"%s\")\n", __FILE__,       \
                    __LINE__, #a, #b, a_ ? a_ : "(null)", b_ ? b_ : "(null)");             \
            check_cur_fails++;                                                             \
        }                                                                                  \
    } while (0)

#define TEST(name) static void name(void)
#define RUN(name)                                                                          \
    do {                                                                                   \
        check_cur_fails = 0;                                                               \
        name();                                                                            \
        if (check_cur_fails) {                                                             \
            printf("FAIL %s\n", #name);                                                    \
            check_failed_tests++;                                                          \
        } else {                                                                           \
            printf("ok %s\n", #name);                                                      \
        }                                                                                  \
        fflush(stdout);                                                                    \
    } while (0)
#define CHECK_DONE() return check_failed_tests ? 1 : 0

#endif

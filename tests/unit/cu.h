/* Shared helpers for the CUnit programs (the main() is in cu_main.c). */
#ifndef FERRY_TESTS_CU_H
#define FERRY_TESTS_CU_H

#include <CUnit/CUnit.h>
#include <stddef.h>

typedef struct cu_test {
    const char *name;
    CU_TestFunc fn;
} cu_test_t;

/** Adds a suite named @p suite with @p n tests. @returns 0, or -1 if CUnit refused. */
int cu_add_tests(const char *suite, const cu_test_t *tests, size_t n);

#endif

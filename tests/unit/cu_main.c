/* Shared main() for the CUnit programs: each *_test.c defines cu_register(), and the
 * exit code comes from CU_get_number_of_failures() because the basic runner exits 0
 * even when assertions fail. */
#include <CUnit/Basic.h>
#include <stdio.h>

#include "tests/unit/cu.h"

int cu_register(void);

int cu_add_tests(const char *suite, const cu_test_t *tests, size_t n)
{
    CU_pSuite s = CU_add_suite(suite, NULL, NULL);
    if (!s)
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!CU_add_test(s, tests[i].name, tests[i].fn))
            return -1;
    return 0;
}

int main(void)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    if (cu_register() != 0) {
        fprintf(stderr, "suite registration failed: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    unsigned failures = CU_get_number_of_failures();
    unsigned ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    if (ran == 0) {
        fprintf(stderr, "no test ran\n");
        return 1;
    }
    return failures ? 1 : 0;
}

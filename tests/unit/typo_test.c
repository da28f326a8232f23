/* typo_test: the edit distance (optimal string alignment) and which known key a misspelt one
 * is taken for, with the worker's and the connector's real misspellings. */
#include <CUnit/CUnit.h>

#include "tests/unit/cu.h"
#include <string.h>

#include "worker/typo.h"

static void test_distance(void)
{
    CU_ASSERT_EQUAL(typo_distance("", ""), 0);
    CU_ASSERT_EQUAL(typo_distance("abc", "abc"), 0);
    CU_ASSERT_EQUAL(typo_distance("", "abc"), 3);
    CU_ASSERT_EQUAL(typo_distance("bootstrap.server", "bootstrap.servers"), 1);   /* deletion */
    CU_ASSERT_EQUAL(typo_distance("zookeeper.conect", "zookeeper.connect"), 1);   /* deletion */
    CU_ASSERT_EQUAL(typo_distance("topic.blacklst", "topic.blacklist"), 1);
    CU_ASSERT_EQUAL(typo_distance("group.di", "group.id"), 1);                    /* transposition */
    CU_ASSERT_EQUAL(typo_distance("gruop.id", "group.id"), 1);
    CU_ASSERT_EQUAL(typo_distance("group.xd", "group.id"), 1);                    /* substitution */
    CU_ASSERT_EQUAL(typo_distance("kitten", "sitting"), 3);
    CU_ASSERT_EQUAL(typo_distance("ca", "abc"), 3); /* OSA, not the unrestricted distance (2) */
    CU_ASSERT_EQUAL(typo_distance("Group.id", "group.id"), 1);                    /* case counts */
    char lng[TYPO_MAX_LEN + 2];
    memset(lng, 'a', sizeof lng - 1);
    lng[sizeof lng - 1] = '\0';
    CU_ASSERT_EQUAL(typo_distance(lng, "a"), TYPO_MAX_LEN + 1);
    lng[TYPO_MAX_LEN] = '\0';
    CU_ASSERT_EQUAL(typo_distance(lng, lng), 0);
}

static void test_suggest(void)
{
    static const char *const keys[] = {"bootstrap.servers", "group.id", "zookeeper.connect",
                                       "zookeeper.session.timeout.ms", "offset.storage.topic",
                                       "status.storage.topic", NULL, "acks", "listeners"};
    const size_t n = sizeof keys / sizeof keys[0];
    CU_ASSERT_STRING_EQUAL(typo_suggest("bootstrap.server", keys, n), "bootstrap.servers");
    CU_ASSERT_STRING_EQUAL(typo_suggest("bootstrap_servers", keys, n), "bootstrap.servers");
    CU_ASSERT_STRING_EQUAL(typo_suggest("zookeeper.conect", keys, n), "zookeeper.connect");
    CU_ASSERT_STRING_EQUAL(typo_suggest("zookeper.conect", keys, n), "zookeeper.connect"); /* two edits */
    CU_ASSERT_STRING_EQUAL(typo_suggest("offset.storage.topik", keys, n), "offset.storage.topic");
    CU_ASSERT_STRING_EQUAL(typo_suggest("listener", keys, n), "listeners");
    CU_ASSERT_PTR_NULL(typo_suggest("bootstrap.servers", keys, n));  /* a known key is no typo */
    CU_ASSERT_PTR_NULL(typo_suggest("zookeeper.connection.timeout.ms", keys, n));
    CU_ASSERT_PTR_NULL(typo_suggest("plugin.path", keys, n));
    CU_ASSERT_PTR_NULL(typo_suggest("bootstrap.svrs", keys, n));     /* three edits */
    /* short keys: at most one edit */
    CU_ASSERT_STRING_EQUAL(typo_suggest("ack", keys, n), "acks");
    CU_ASSERT_PTR_NULL(typo_suggest("ac", keys, n));
    CU_ASSERT_PTR_NULL(typo_suggest("group.x", keys, n));            /* 7 characters, two edits */
    CU_ASSERT_PTR_NULL(typo_suggest("", keys, n));
    CU_ASSERT_PTR_NULL(typo_suggest("x", NULL, 0));
    /* the closest wins; the first of equals */
    static const char *const two[] = {"topic.whitelist", "topic.blacklist"};
    CU_ASSERT_STRING_EQUAL(typo_suggest("topic.blacklst", two, 2), "topic.blacklist");
    CU_ASSERT_STRING_EQUAL(typo_suggest("topic.whitelst", two, 2), "topic.whitelist");
}

int cu_register(void)
{
    static const cu_test_t tests[] = {
        {"distance", test_distance},
        {"suggest", test_suggest},
    };
    return cu_add_tests("typo", tests, sizeof tests / sizeof tests[0]);
}

/* flog: leveled, module-tagged log lines on stderr. See flog.h. */
#include "worker/flog.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static const char *level_names[FLOG__LEVEL_COUNT] = {"ERROR", "WARN", "INFO", "DEBUG", "TRACE"};
static const char *module_loggers[FLOG_M__COUNT + 1] = {
    "ferry.worker", "ferry.rest", "ferry.store", "ferry.connector", "ferry.task",
    "ferry.coordinator", "ferry.proto", "ferry.kafka", "root"};
static const char *module_tags[FLOG_M__COUNT] = {"worker", "rest", "store", "connector",
                                                 "task", "coord", "proto", "kafka"};

/* index FLOG_M__COUNT is root; -1 means "inherit root" */
static _Atomic int levels[FLOG_M__COUNT + 1] = {
    [0 ... FLOG_M__COUNT - 1] = -1, [FLOG_M__COUNT] = FLOG_INFO};
static _Atomic int64_t modified[FLOG_M__COUNT + 1] = {[0 ... FLOG_M__COUNT] = -1};
static int journal; /* set once at start (flog_detect_journal), read by every thread after */

int flog_detect_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    char end;
    journal = js && sscanf(js, "%llu:%llu%c", &dev, &ino, &end) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
              (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
    return journal;
}

int flog_syslog_priority(flog_level_t level)
{
    static const int prio[FLOG__LEVEL_COUNT] = {3, 4, 6, 7, 7};
    return (unsigned)level < FLOG__LEVEL_COUNT ? prio[level] : 6;
}

const char *flog_level_name(flog_level_t level)
{
    return (unsigned)level < FLOG__LEVEL_COUNT ? level_names[level] : "?";
}

int flog_level_parse(const char *name)
{
    for (int i = 0; i < FLOG__LEVEL_COUNT; i++)
        if (strcasecmp(name, level_names[i]) == 0)
            return i;
    if (strcasecmp(name, "WARNING") == 0)
        return FLOG_WARN;
    return -1;
}

const char *flog_module_logger(flog_module_t mod)
{
    return (unsigned)mod <= FLOG_M__COUNT ? module_loggers[mod] : "?";
}

int flog_module_find(const char *name)
{
    for (int i = 0; i <= FLOG_M__COUNT; i++)
        if (strcmp(name, module_loggers[i]) == 0)
            return i;
    return -1;
}

void flog_set_level(int mod, flog_level_t level, int64_t now_ms)
{
    if (mod < 0 || mod > FLOG_M__COUNT)
        return;
    atomic_store(&levels[mod], (int)level);
    atomic_store(&modified[mod], now_ms);
}

flog_level_t flog_get_level(int mod)
{
    int l = (mod >= 0 && mod < FLOG_M__COUNT) ? atomic_load(&levels[mod]) : -1;
    return l >= 0 ? (flog_level_t)l : (flog_level_t)atomic_load(&levels[FLOG_M__COUNT]);
}

int flog_is_explicit(int mod, int64_t *last_modified_ms)
{
    if (mod < 0 || mod > FLOG_M__COUNT)
        return 0;
    if (last_modified_ms)
        *last_modified_ms = atomic_load(&modified[mod]);
    return atomic_load(&levels[mod]) >= 0;
}

int flog_enabled(flog_level_t level, flog_module_t mod)
{
    return (int)level <= (int)flog_get_level(mod);
}

void flog_vwrite(flog_level_t level, flog_module_t mod, const char *fmt, va_list ap)
{
    char line[4096];
    struct timeval tv;
    struct tm tm;
    const char *tag = (unsigned)mod < FLOG_M__COUNT ? module_tags[mod] : "?";
    int n;
    if (journal) { /* the journal stamps the time itself */
        n = snprintf(line, sizeof line, "<%d>%-5s [%s] ", flog_syslog_priority(level), flog_level_name(level), tag);
    } else {
        gettimeofday(&tv, NULL);
        gmtime_r(&tv.tv_sec, &tm);
        n = snprintf(line, sizeof line, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %-5s [%s] ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 1000),
                     flog_level_name(level), tag);
    }
    int m = vsnprintf(line + n, sizeof line - n - 1, fmt, ap);
    if (m < 0)
        m = 0;
    n += m;
    if (n > (int)sizeof line - 2)
        n = sizeof line - 2;
    line[n++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, n);
    (void)w;
}

void flog_write(flog_level_t level, flog_module_t mod, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    flog_vwrite(level, mod, fmt, ap);
    va_end(ap);
}

/* flog: ferry's logging. One macro family with a level and a module tag.
 * Levels can be changed at runtime per module (the REST /admin/loggers endpoint), so
 * the per-module level is an atomic int that any thread may read.
 * Output: one line per call on stderr, written with a single write() so lines from
 * different threads never interleave. When stderr is the systemd journal, each line starts
 * with its syslog priority instead of a timestamp ("<4>WARN [coord] ..."), so that
 * `journalctl -p warning` selects by level. */
#ifndef FERRY_FLOG_H
#define FERRY_FLOG_H

#include <stdarg.h>
#include <stdint.h>

typedef enum {
    FLOG_ERROR = 0,
    FLOG_WARN,
    FLOG_INFO,
    FLOG_DEBUG,
    FLOG_TRACE,
    FLOG__LEVEL_COUNT
} flog_level_t;

typedef enum {
    FLOG_M_WORKER = 0,
    FLOG_M_REST,
    FLOG_M_STORE,
    FLOG_M_CONN,
    FLOG_M_TASK,
    FLOG_M_COORD,
    FLOG_M_PROTO,
    FLOG_M_KAFKA,
    FLOG_M__COUNT
} flog_module_t;

/** Logs when the module's effective level allows it. Usage: FLOG(WARN, REST, "x=%d", x). */
#define FLOG(lvl, mod, ...)                                                                        \
    do {                                                                                           \
        if (flog_enabled(FLOG_##lvl, FLOG_M_##mod))                                                \
            flog_write(FLOG_##lvl, FLOG_M_##mod, __VA_ARGS__);                                     \
    } while (0)

int flog_enabled(flog_level_t level, flog_module_t mod);
void flog_write(flog_level_t level, flog_module_t mod, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void flog_vwrite(flog_level_t level, flog_module_t mod, const char *fmt, va_list ap);

/**
 * @brief Switches to journal lines when stderr is the journal: $JOURNAL_STREAM (set by systemd
 * for a service whose stderr is the journal) names stderr's device and inode ("dev:inode").
 * Call once at start, before other threads log.
 * @returns 1 if journal lines are on.
 */
int flog_detect_journal(void);

/** The syslog priority of a level: ERROR 3, WARN 4, INFO 6, DEBUG and TRACE 7. */
int flog_syslog_priority(flog_level_t level);

/** Level names as Kafka Connect (log4j) spells them: ERROR WARN INFO DEBUG TRACE. */
const char *flog_level_name(flog_level_t level);
/** @returns the level for a case-insensitive name, or -1. */
int flog_level_parse(const char *name);

/** Logger names ("ferry.rest", ...), and "root" for the root logger. */
const char *flog_module_logger(flog_module_t mod);
/** @returns the module whose logger name is @p name, FLOG_M__COUNT for "root", -1 if unknown. */
int flog_module_find(const char *name);

/** Sets a module's level (FLOG_M__COUNT = root); stamps last_modified with @p now_ms. */
void flog_set_level(int mod, flog_level_t level, int64_t now_ms);
/** @returns the effective level (explicit, else root). */
flog_level_t flog_get_level(int mod);
/** @returns 1 if the module's level was set explicitly; last_modified in ms or -1. */
int flog_is_explicit(int mod, int64_t *last_modified_ms);

#endif

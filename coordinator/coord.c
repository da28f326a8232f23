/* coord: group membership, leader election and assignment through ZooKeeper.
 *
 * ZooKeeper layout, under <chroot>/ferry/<group.id>:
 *   members/m-NNNNNNNNNN  ephemeral sequential, proto_member (worker id, REST URL, version)
 *   acks/m-NNNNNNNNNN     ephemeral, proto_ack: what that worker runs now (and for which generation)
 *   leader                ephemeral, proto_leader: the leader's member id and REST URL
 *   assignment            persistent, proto_assignment: one entry per member, versioned
 *
 * Election without herd effect: the member with the lowest sequence number leads; every
 * other member watches only its predecessor. The leader watches the members and every ack.
 *
 * Rebalance (incremental, cooperative): the leader treats a worker as holding
 *   ack.holding ∪ assignment[worker].assigned
 * so an item it just handed out, or that a worker is still stopping, is never handed to a
 * second worker. assign_compute() revokes what must move; once the holder's ack shows it
 * stopped, the next round adds it elsewhere. Each write of the assignment is conditional on
 * the znode version (a stale leader's write fails).
 *
 * Fencing: a worker disconnected from ZooKeeper stops all its tasks after
 * fence_ms = session_timeout/3 - 500 ms (at least 200 ms). The C client notices a dead
 * connection at most 2/3 of the session timeout after it last heard from the server, and the
 * server expires the session no earlier than a full timeout after that, so the worker has
 * stopped before its ephemeral znodes vanish and the leader can hand its work to anyone else.
 * See docs/ARCHITECTURE.md for the full argument and its assumptions.
 *
 * Threads: the coord thread owns the ZooKeeper handle and makes only synchronous calls.
 * ZooKeeper's completion thread runs watchers, which only set flags and signal. The h2o loop
 * sends herder snapshots in (coord_on_change) and receives leadership, assignments and
 * fence orders back as multithread messages. */
#include "coordinator/coord.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zookeeper/zookeeper.h>

#include "coordinator/assign.h"
#include "proto/proto.h"
#include "worker/evq.h"
#include "worker/flog.h"
#include "worker/kutil.h"

#define EV_SESSION 0x01
#define EV_MEMBERS 0x02
#define EV_ASSIGN 0x04
#define EV_LEADER 0x08
#define EV_ACKS 0x10
#define EV_SNAPSHOT 0x20
#define EV_STOP 0x40
#define EV_ALL 0x3f

#define ZBUF_MAX (1024 * 1024)

typedef enum { MSG_LEADER = 1, MSG_ASSIGN, MSG_FENCE, MSG_DIRECTORY } msg_type_t;

typedef struct coord_msg {
    h2o_multithread_message_t super;
    msg_type_t type;
    int leader;
    char *url;
    int64_t generation;
    assign_list_t assigned;
    char **directory; /* MSG_DIRECTORY: worker id, REST URL, ... NULL */
} coord_msg_t;

typedef enum { CS_CONNECTING = 0, CS_CONNECTED, CS_EXPIRED } session_t;

typedef struct member {
    char *name; /* znode name, also the member id */
    proto_member_t info;
    proto_ack_t ack;
    int has_ack;
} member_t;

typedef struct departed {
    struct departed *next;
    int64_t until_ms;
    assign_list_t items;
} departed_t;

struct coord {
    h2o_loop_t *loop;
    const wconf_t *wc;
    herder_t *h;
    h2o_multithread_queue_t *queue;
    h2o_multithread_receiver_t recv;
    pthread_t thread;
    /* shared, guarded by lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int flags;
    session_t session;
    int64_t disconnected_at;
    assign_list_t snap_holding, snap_configured;
    int snap_ready;
    /* coord thread */
    zhandle_t *zh;
    char *base, *members_path, *acks_path, *assign_path, *leader_path;
    char member_path[512], member_name[64];
    char *buf;
    int registered, leader, fenced;
    int64_t fence_ms;
    assign_list_t holding, configured, acked_holding;
    int ready;
    int64_t applied_generation;
    /* leader state */
    int dirty;
    proto_assignment_t last;
    int last_version;
    int have_last;
    member_t *members;
    size_t nmembers;
    departed_t *departed;
    char *rest_url, worker_id[300];
};

/* ---- small helpers ------------------------------------------------------------------- */

static void signal_flags(coord_t *co, int flags)
{
    pthread_mutex_lock(&co->lock);
    co->flags |= flags;
    pthread_cond_signal(&co->cond);
    pthread_mutex_unlock(&co->lock);
}

static char *path_join(const char *a, const char *b)
{
    char *s;
    if (asprintf(&s, "%s/%s", a, b) < 0)
        abort();
    return s;
}

static void post(coord_t *co, coord_msg_t *m)
{
    h2o_multithread_send_message(&co->recv, &m->super);
}

static void post_leader(coord_t *co, int leader, const char *url, int64_t gen)
{
    coord_msg_t *m = calloc(1, sizeof *m);
    m->type = MSG_LEADER;
    m->leader = leader;
    m->url = url ? strdup(url) : NULL;
    m->generation = gen;
    post(co, m);
}

/* ---- ZooKeeper callbacks (completion thread): set flags only --------------------------- */

static void session_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    coord_t *co = ctx;
    if (type != ZOO_SESSION_EVENT)
        return;
    pthread_mutex_lock(&co->lock);
    if (state == ZOO_CONNECTED_STATE) {
        co->session = CS_CONNECTED;
    } else if (state == ZOO_EXPIRED_SESSION_STATE || state == ZOO_AUTH_FAILED_STATE) {
        co->session = CS_EXPIRED;
    } else if (co->session == CS_CONNECTED) {
        co->session = CS_CONNECTING;
        co->disconnected_at = kutil_now_ms();
    }
    co->flags |= EV_SESSION;
    pthread_cond_signal(&co->cond);
    pthread_mutex_unlock(&co->lock);
}

static void node_watcher(zhandle_t *zh, int type, int state, const char *path, void *ctx)
{
    coord_t *co = ctx;
    int f = EV_MEMBERS;
    if (type == ZOO_SESSION_EVENT)
        return;
    if (path && !strcmp(path, co->assign_path))
        f = EV_ASSIGN;
    else if (path && !strcmp(path, co->leader_path))
        f = EV_LEADER;
    else if (path && !strncmp(path, co->acks_path, strlen(co->acks_path)))
        f = EV_ACKS;
    signal_flags(co, f);
}

/* ---- loop side ----------------------------------------------------------------------- */

static void on_msgs(h2o_multithread_receiver_t *recv, h2o_linklist_t *messages)
{
    coord_t *co = H2O_STRUCT_FROM_MEMBER(coord_t, recv, recv);
    while (!h2o_linklist_is_empty(messages)) {
        coord_msg_t *m = H2O_STRUCT_FROM_MEMBER(coord_msg_t, super.link, messages->next);
        h2o_linklist_unlink(&m->super.link);
        switch (m->type) {
        case MSG_LEADER:
            herder_set_leader(co->h, m->leader, m->url, m->generation);
            break;
        case MSG_ASSIGN:
            herder_set_assignment(co->h, m->generation, &m->assigned);
            break;
        case MSG_FENCE:
            herder_fence(co->h);
            break;
        case MSG_DIRECTORY:
            herder_set_directory(co->h, (const char *const *)m->directory);
            break;
        }
        for (size_t i = 0; m->directory && m->directory[i]; i++)
            free(m->directory[i]);
        free(m->directory);
        free(m->url);
        assign_list_dispose(&m->assigned);
        free(m);
    }
}

/* Runs on the loop thread whenever the herder's holding or configuration may have changed. */
static void on_herder_change(void *arg)
{
    coord_t *co = arg;
    assign_list_t hold, conf;
    assign_list_init(&hold);
    assign_list_init(&conf);
    herder_holding(co->h, &hold);
    herder_configured(co->h, &conf);
    int ready = herder_ready(co->h);
    pthread_mutex_lock(&co->lock);
    if (!assign_list_equal(&hold, &co->snap_holding) || !assign_list_equal(&conf, &co->snap_configured) ||
        ready != co->snap_ready) {
        assign_list_copy(&co->snap_holding, &hold);
        assign_list_copy(&co->snap_configured, &conf);
        co->snap_ready = ready;
        co->flags |= EV_SNAPSHOT;
        pthread_cond_signal(&co->cond);
    }
    pthread_mutex_unlock(&co->lock);
    assign_list_dispose(&hold);
    assign_list_dispose(&conf);
}

/* ---- coord thread: session and registration ------------------------------------------ */

/* The ACL of every znode ferry creates: open, or (zookeeper.set.acl) only the digest
 * identity every worker of the group authenticates as. */
static struct ACL_vector *acl_of(const coord_t *co)
{
    return co->wc->zk_set_acl ? &ZOO_CREATOR_ALL_ACL : &ZOO_OPEN_ACL_UNSAFE;
}

static int ensure_path(coord_t *co, const char *path)
{
    char *dup = strdup(path);
    for (char *p = dup + 1;; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = '\0';
            int rc = zoo_create(co->zh, dup, NULL, -1, acl_of(co), 0, NULL, 0);
            *p = c;
            if (rc != ZOK && rc != ZNODEEXISTS) {
                FLOG(WARN, COORD, "cannot create %s: %s", dup, zerror(rc));
                free(dup);
                return rc;
            }
            if (!c)
                break;
        }
    }
    free(dup);
    return ZOK;
}

static void write_ack(coord_t *co)
{
    proto_ack_t ack = {.member = co->member_name, .generation = co->applied_generation, .holding = co->holding};
    char *buf;
    size_t len;
    if (proto_ack_encode(&ack, &buf, &len))
        return;
    char *p = path_join(co->acks_path, co->member_name);
    int rc = zoo_set(co->zh, p, buf, (int)len, -1);
    if (rc == ZNONODE)
        rc = zoo_create(co->zh, p, buf, (int)len, acl_of(co), ZOO_EPHEMERAL, NULL, 0);
    if (rc == ZOK)
        assign_list_copy(&co->acked_holding, &co->holding);
    else
        FLOG(WARN, COORD, "writing ack %s: %s", p, zerror(rc));
    free(p);
    free(buf);
}

static int register_member(coord_t *co)
{
    if (ensure_path(co, co->members_path) || ensure_path(co, co->acks_path))
        return -1;
    proto_member_t m = {.worker_id = co->worker_id, .rest_url = co->rest_url, .version = FERRY_VERSION,
                        .protocol = 1, .started_ms = kutil_wall_ms()};
    char *buf;
    size_t len;
    if (proto_member_encode(&m, &buf, &len))
        return -1;
    char *prefix = path_join(co->members_path, "m-");
    int rc = zoo_create(co->zh, prefix, buf, (int)len, acl_of(co),
                        ZOO_EPHEMERAL | ZOO_SEQUENCE, co->member_path, sizeof co->member_path);
    free(prefix);
    free(buf);
    if (rc != ZOK) {
        FLOG(WARN, COORD, "cannot register in %s: %s", co->members_path, zerror(rc));
        return -1;
    }
    snprintf(co->member_name, sizeof co->member_name, "%s", strrchr(co->member_path, '/') + 1);
    co->registered = 1;
    co->applied_generation = -1;
    write_ack(co);
    FLOG(INFO, COORD, "joined group %s as %s", co->wc->group_id, co->member_name);
    return 0;
}

/* The ZooKeeper client's own lines ("...:ZOO_ERROR@fn@line: text") through flog, so that they
 * carry a priority in the journal too. Runs on the client's threads. Its errors are WARN: they
 * are about one server connection (a node down, a refused connect), which the client retries
 * on its own; what a lost session means for the group the coordinator says itself, once. */
static void zk_log(const char *message)
{
    flog_level_t l = strstr(message, ":ZOO_ERROR@") || strstr(message, ":ZOO_WARN@") ? FLOG_WARN
                     : strstr(message, ":ZOO_INFO@") ? FLOG_INFO
                                                     : FLOG_DEBUG;
    if (flog_enabled(l, FLOG_M_COORD))
        flog_write(l, FLOG_M_COORD, "zookeeper client: %s", message);
}

static void connect_zk(coord_t *co)
{
    pthread_mutex_lock(&co->lock);
    co->session = CS_CONNECTING;
    co->disconnected_at = kutil_now_ms();
    pthread_mutex_unlock(&co->lock);
    co->zh = zookeeper_init2(co->wc->zk_hosts, session_watcher, (int)co->wc->session_timeout_ms, NULL, co, 0, zk_log);
    if (!co->zh)
        FLOG(ERROR, COORD, "cannot create a ZooKeeper handle for %s", co->wc->zk_hosts);
    else if (co->wc->zk_digest) {
        /* Queued now, sent first on every (re)connection of this handle: every request
         * after it runs as that identity. */
        int rc = zoo_add_auth(co->zh, "digest", co->wc->zk_digest, (int)strlen(co->wc->zk_digest), NULL, NULL);
        if (rc != ZOK)
            FLOG(ERROR, COORD, "cannot add ZooKeeper digest authentication: %s", zerror(rc));
    }
}

static void last_clear(coord_t *co)
{
    if (co->have_last)
        proto_assignment_dispose(&co->last);
    co->have_last = 0;
    memset(&co->last, 0, sizeof co->last);
}

static void drop_session(coord_t *co)
{
    if (co->zh)
        zookeeper_close(co->zh);
    co->zh = NULL;
    co->registered = 0;
    co->leader = 0;
    last_clear(co);
}

/* ---- coord thread: leadership --------------------------------------------------------- */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Reads the members; returns the sorted names (caller frees) or NULL. Watches the children only
 * when @p watch (the leader). */
static int read_members(coord_t *co, int watch, struct String_vector *sv)
{
    int rc = watch ? zoo_wget_children(co->zh, co->members_path, node_watcher, co, sv)
                   : zoo_get_children(co->zh, co->members_path, 0, sv);
    if (rc != ZOK)
        return rc;
    qsort(sv->data, sv->count, sizeof(char *), cmp_str);
    return ZOK;
}

static void publish_leader(coord_t *co)
{
    proto_leader_t l = {.member = co->member_name, .rest_url = co->rest_url,
                        .generation = co->have_last ? co->last.generation : 0};
    char *buf;
    size_t len;
    if (proto_leader_encode(&l, &buf, &len))
        return;
    int rc = zoo_create(co->zh, co->leader_path, buf, (int)len, acl_of(co), ZOO_EPHEMERAL, NULL, 0);
    if (rc == ZNODEEXISTS)
        rc = zoo_set(co->zh, co->leader_path, buf, (int)len, -1);
    if (rc != ZOK)
        FLOG(WARN, COORD, "publishing leadership: %s", zerror(rc));
    free(buf);
}

/* Election: lowest sequence leads, the others watch their predecessor only. */
static void elect(coord_t *co)
{
    struct String_vector sv = {0};
    if (read_members(co, 0, &sv) != ZOK)
        return;
    int me = -1;
    for (int i = 0; i < sv.count; i++)
        if (!strcmp(sv.data[i], co->member_name))
            me = i;
    if (me < 0) {
        /* our znode is gone (session trouble): re-register */
        FLOG(WARN, COORD, "member %s no longer registered; rejoining", co->member_name);
        co->registered = 0;
    } else if (me == 0) {
        if (!co->leader) {
            FLOG(INFO, COORD, "%s is now the leader of group %s", co->member_name, co->wc->group_id);
            co->leader = 1;
            last_clear(co);
            co->dirty = 1;
            publish_leader(co);
        }
    } else {
        co->leader = 0;
        char *pred = path_join(co->members_path, sv.data[me - 1]);
        struct Stat st;
        int rc = zoo_wexists(co->zh, pred, node_watcher, co, &st);
        free(pred);
        if (rc == ZNONODE)
            signal_flags(co, EV_MEMBERS); /* predecessor just left: look again */
    }
    deallocate_String_vector(&sv);
}

/* Reads a znode into co->buf and leaves a watch on it, whether it exists or not. The node may
 * be created between a failed get and the exists call that arms the creation watch; exists
 * then succeeds without any event to come, so read again. @returns ZOK, ZNONODE or an error. */
static int get_watched(coord_t *co, const char *path, int *len)
{
    for (int tries = 0; tries < 5; tries++) {
        struct Stat st;
        *len = ZBUF_MAX;
        int rc = zoo_wget(co->zh, path, node_watcher, co, co->buf, len, &st);
        if (rc != ZNONODE)
            return rc;
        rc = zoo_wexists(co->zh, path, node_watcher, co, &st);
        if (rc != ZOK)
            return rc; /* ZNONODE: the creation watch is armed */
    }
    return ZNONODE;
}

/* The member znode with the lowest sequence number (the one that leads by the election) into
 * @p out. @returns ZOK, ZNONODE if there is none, or the error. */
static int lowest_member(coord_t *co, char *out, size_t len)
{
    struct String_vector kids = {0};
    int rc = zoo_get_children(co->zh, co->members_path, 0, &kids);
    if (rc != ZOK)
        return rc;
    const char *lowest = NULL;
    for (int i = 0; i < kids.count; i++)
        if (!lowest || strcmp(kids.data[i], lowest) < 0)
            lowest = kids.data[i];
    if (lowest)
        snprintf(out, len, "%s", lowest);
    deallocate_String_vector(&kids);
    return lowest ? ZOK : ZNONODE;
}

static int lowest_is_me(coord_t *co)
{
    char lowest[64];
    return lowest_member(co, lowest, sizeof lowest) == ZOK && !strcmp(lowest, co->member_name);
}

/* The leader znode is believed only when it agrees with the election: it names the member with
 * the lowest sequence number, and that member's own znode advertises the same REST URL. Without
 * this, whoever could rewrite the leader znode (anyone, where ZooKeeper ACLs are off) would make
 * followers forward requests, Authorization headers included, wherever it says. Member znodes
 * are ephemeral and carry their owner's URL; with ACLs on only the group's workers write them.
 * @returns 1 if plausible, else 0 with @p why filled. */
static int leader_plausible(coord_t *co, const proto_leader_t *l, char *why, size_t len)
{
    char lowest[64];
    int rc = lowest_member(co, lowest, sizeof lowest);
    if (rc != ZOK) {
        snprintf(why, len, "cannot list the members (%s)", zerror(rc));
        return 0;
    }
    int ok = !strcmp(lowest, l->member);
    if (!ok) {
        snprintf(why, len, "it names %.64s, but the member that leads by the election is %s", l->member, lowest);
        return 0;
    }
    char *p = path_join(co->members_path, l->member);
    int n = ZBUF_MAX;
    rc = zoo_get(co->zh, p, 0, co->buf, &n, NULL);
    free(p);
    proto_member_t m;
    ferr_t err;
    if (rc != ZOK || n <= 0 || proto_member_decode(co->buf, n, &m, &err)) {
        snprintf(why, len, "the znode of member %s cannot be read (%s)", l->member, rc != ZOK ? zerror(rc) : "malformed");
        return 0;
    }
    ok = !strcmp(m.rest_url, l->rest_url);
    if (!ok)
        snprintf(why, len, "it gives the REST URL %.200s, but member %s advertises %.200s", l->rest_url, l->member,
                 m.rest_url);
    proto_member_dispose(&m);
    return ok;
}

/* Everyone: who leads, and where to forward. */
static void read_leader(coord_t *co)
{
    int len;
    int rc = get_watched(co, co->leader_path, &len);
    if (rc == ZNONODE) {
        post_leader(co, 0, NULL, 0);
        return;
    }
    if (rc != ZOK)
        return;
    proto_leader_t l;
    ferr_t err;
    char why[512];
    int bad = proto_leader_decode(co->buf, len, &l, &err) != FERR_OK;
    if (co->leader && (bad || strcmp(l.member, co->member_name) || strcmp(l.rest_url, co->rest_url)) &&
        lowest_is_me(co)) {
        /* someone else wrote it (where ZooKeeper ACLs are off anyone can): say again who leads */
        FLOG(WARN, COORD, "the leader znode was changed by someone else (%s); publishing this leader again",
             bad ? "malformed" : l.rest_url);
        if (!bad)
            proto_leader_dispose(&l);
        publish_leader(co);
        return;
    }
    if (bad) {
        FLOG(WARN, COORD, "ignoring malformed leader znode: %s", err.msg);
        return;
    }
    if (leader_plausible(co, &l, why, sizeof why)) {
        post_leader(co, !strcmp(l.member, co->member_name) && co->leader, l.rest_url, l.generation);
    } else {
        FLOG(WARN, COORD, "ignoring the leader znode: %s; no leader known until it agrees with the election", why);
        post_leader(co, 0, NULL, 0);
    }
    proto_leader_dispose(&l);
}

/* ---- coord thread: assignment (everyone) ----------------------------------------------- */

static void read_assignment(coord_t *co)
{
    int len;
    int rc = get_watched(co, co->assign_path, &len);
    if (rc != ZOK || len <= 0)
        return;
    proto_assignment_t a;
    ferr_t err;
    if (proto_assignment_decode(co->buf, len, &a, &err)) {
        FLOG(WARN, COORD, "ignoring malformed assignment: %s", err.msg);
        return;
    }
    if (a.generation > co->applied_generation && !co->fenced) {
        coord_msg_t *m = calloc(1, sizeof *m);
        m->type = MSG_ASSIGN;
        m->generation = a.generation;
        for (size_t i = 0; i < a.n; i++)
            if (!strcmp(a.entries[i].member, co->member_name))
                assign_list_copy(&m->assigned, &a.entries[i].assigned);
        FLOG(INFO, COORD, "generation %lld: assigned %zu item(s)", (long long)a.generation, m->assigned.n);
        co->applied_generation = a.generation;
        /* who is who in this generation: where a task's owner is reached (herder_set_directory) */
        coord_msg_t *d = calloc(1, sizeof *d);
        d->type = MSG_DIRECTORY;
        d->directory = calloc(2 * a.n + 1, sizeof *d->directory);
        for (size_t i = 0; i < a.n; i++) {
            d->directory[2 * i] = strdup(a.entries[i].worker_id);
            d->directory[2 * i + 1] = strdup(a.entries[i].rest_url);
        }
        post(co, d);
        post(co, m);
        write_ack(co);
    }
    proto_assignment_dispose(&a);
}

/* ---- coord thread: the leader's rebalance ----------------------------------------------- */

static void members_free(coord_t *co)
{
    for (size_t i = 0; i < co->nmembers; i++) {
        free(co->members[i].name);
        proto_member_dispose(&co->members[i].info);
        if (co->members[i].has_ack)
            proto_ack_dispose(&co->members[i].ack);
    }
    free(co->members);
    co->members = NULL;
    co->nmembers = 0;
}

static int load_members(coord_t *co)
{
    struct String_vector sv = {0};
    if (read_members(co, 1, &sv) != ZOK)
        return -1;
    members_free(co);
    co->members = calloc(sv.count ? sv.count : 1, sizeof(member_t));
    for (int i = 0; i < sv.count; i++) {
        member_t *m = &co->members[co->nmembers];
        char *p = path_join(co->members_path, sv.data[i]);
        int len = ZBUF_MAX;
        struct Stat st;
        ferr_t err;
        int rc = zoo_get(co->zh, p, 0, co->buf, &len, &st);
        free(p);
        if (rc != ZOK || len <= 0 || proto_member_decode(co->buf, len, &m->info, &err))
            continue; /* gone meanwhile, or unreadable: not a member for this round */
        m->name = strdup(sv.data[i]);
        p = path_join(co->acks_path, sv.data[i]);
        len = ZBUF_MAX;
        rc = zoo_wget(co->zh, p, node_watcher, co, co->buf, &len, &st);
        if (rc == ZNONODE)
            zoo_wexists(co->zh, p, node_watcher, co, &st);
        free(p);
        if (rc == ZOK && len > 0 && !proto_ack_decode(co->buf, len, &m->ack, &err))
            m->has_ack = 1;
        co->nmembers++;
    }
    deallocate_String_vector(&sv);
    return 0;
}

static const proto_assignment_entry_t *last_entry(const coord_t *co, const char *member)
{
    if (!co->have_last)
        return NULL;
    for (size_t i = 0; i < co->last.n; i++)
        if (!strcmp(co->last.entries[i].member, member))
            return &co->last.entries[i];
    return NULL;
}

static int read_last(coord_t *co)
{
    int len = ZBUF_MAX;
    struct Stat st;
    int rc = zoo_get(co->zh, co->assign_path, 0, co->buf, &len, &st);
    last_clear(co);
    if (rc == ZNONODE) {
        co->last_version = -2; /* create it */
        return 0;
    }
    if (rc != ZOK)
        return -1;
    co->last_version = st.version;
    ferr_t err;
    if (len > 0 && !proto_assignment_decode(co->buf, len, &co->last, &err))
        co->have_last = 1;
    return 0;
}

/* Items of members that left recently are held back for scheduled.rebalance.max.delay.ms. */
static void note_departures(coord_t *co, int64_t now)
{
    if (!co->have_last || co->wc->scheduled_rebalance_max_delay_ms <= 0)
        return;
    for (size_t i = 0; i < co->last.n; i++) {
        int alive = 0;
        for (size_t j = 0; j < co->nmembers; j++)
            alive |= !strcmp(co->members[j].name, co->last.entries[i].member);
        if (alive || !co->last.entries[i].assigned.n)
            continue;
        departed_t *d = calloc(1, sizeof *d);
        d->until_ms = now + co->wc->scheduled_rebalance_max_delay_ms;
        assign_list_copy(&d->items, &co->last.entries[i].assigned);
        d->next = co->departed;
        co->departed = d;
    }
}

static void effective_configured(coord_t *co, int64_t now, assign_list_t *out)
{
    for (departed_t **pp = &co->departed; *pp;) {
        if ((*pp)->until_ms <= now) {
            departed_t *d = *pp;
            *pp = d->next;
            assign_list_dispose(&d->items);
            free(d);
        } else {
            pp = &(*pp)->next;
        }
    }
    for (size_t i = 0; i < co->configured.n; i++) {
        int held_back = 0;
        for (departed_t *d = co->departed; d && !held_back; d = d->next)
            held_back = assign_list_contains(&d->items, co->configured.items[i].connector,
                                             co->configured.items[i].task);
        if (!held_back)
            assign_list_add(out, co->configured.items[i].connector, co->configured.items[i].task);
    }
}

static void rebalance(coord_t *co)
{
    int64_t now = kutil_now_ms();
    if (!co->ready || read_last(co) || load_members(co))
        return;
    note_departures(co, now);
    assign_list_t conf;
    assign_list_init(&conf);
    effective_configured(co, now, &conf);
    size_t n = co->nmembers;
    assign_worker_t *ws = calloc(n ? n : 1, sizeof *ws);
    for (size_t i = 0; i < n; i++) {
        member_t *m = &co->members[i];
        assign_worker_init(&ws[i], m->name);
        if (m->has_ack)
            for (size_t k = 0; k < m->ack.holding.n; k++)
                assign_list_add(&ws[i].current, m->ack.holding.items[k].connector, m->ack.holding.items[k].task);
        const proto_assignment_entry_t *e = last_entry(co, m->name);
        for (size_t k = 0; e && k < e->assigned.n; k++)
            if (!assign_list_contains(&ws[i].current, e->assigned.items[k].connector, e->assigned.items[k].task))
                assign_list_add(&ws[i].current, e->assigned.items[k].connector, e->assigned.items[k].task);
    }
    assign_stats_t stats;
    int again = assign_compute(&conf, ws, n, &stats);
    /* Write only if something differs from the last assignment. A revocation still waiting for
     * its ack is no difference: the workers have it already, and rewriting it on every ack of
     * anything else only inflated the generation (7 generations for one revoked task). */
    int changed = !co->have_last || co->last.n != n || strcmp(co->last.leader, co->member_name);
    for (size_t i = 0; i < n && !changed; i++) {
        const proto_assignment_entry_t *e = last_entry(co, ws[i].id);
        changed = !e || !assign_list_equal(&e->assigned, &ws[i].assigned) ||
                  !assign_list_equal(&e->revoked, &ws[i].revoked);
    }
    if (changed) {
        proto_assignment_t a = {.generation = (co->have_last ? co->last.generation : 0) + 1,
                                .leader = co->member_name, .leader_url = co->rest_url,
                                .config_offset = 0, .delay_ms = co->wc->scheduled_rebalance_max_delay_ms};
        a.entries = calloc(n ? n : 1, sizeof *a.entries);
        a.n = n;
        for (size_t i = 0; i < n; i++) {
            a.entries[i].member = co->members[i].name;
            a.entries[i].worker_id = co->members[i].info.worker_id;
            a.entries[i].rest_url = co->members[i].info.rest_url;
            a.entries[i].assigned = ws[i].assigned;
            a.entries[i].revoked = ws[i].revoked;
        }
        char *buf;
        size_t len;
        if (!proto_assignment_encode(&a, &buf, &len)) {
            int rc = co->last_version == -2
                         ? zoo_create(co->zh, co->assign_path, buf, (int)len, acl_of(co), 0, NULL, 0)
                         : zoo_set(co->zh, co->assign_path, buf, (int)len, co->last_version);
            if (rc == ZOK)
                FLOG(INFO, COORD, "generation %lld: %zu worker(s), %zu item(s); added %zu, revoked %zu%s",
                     (long long)a.generation, n, conf.n, stats.added,
                     stats.moved_revocations + stats.deleted_revoked + stats.duplicates_revoked,
                     again ? " (follow-up round pending)" : "");
            else
                co->dirty = 1; /* lost a race (ZBADVERSION) or ZooKeeper trouble: retry */
            free(buf);
        }
        free(a.entries);
    }
    for (size_t i = 0; i < n; i++)
        assign_worker_dispose(&ws[i]);
    free(ws);
    assign_list_dispose(&conf);
}

/* ---- coord thread: main loop ---------------------------------------------------------- */

static void take_snapshot(coord_t *co)
{
    pthread_mutex_lock(&co->lock);
    assign_list_copy(&co->holding, &co->snap_holding);
    int conf_changed = !assign_list_equal(&co->configured, &co->snap_configured) || co->ready != co->snap_ready;
    assign_list_copy(&co->configured, &co->snap_configured);
    co->ready = co->snap_ready;
    pthread_mutex_unlock(&co->lock);
    if (conf_changed && co->leader)
        co->dirty = 1;
}

static void fence(coord_t *co, const char *why)
{
    if (co->fenced)
        return;
    FLOG(WARN, COORD, "%s: stopping all tasks so no other worker can run them at the same time", why);
    co->fenced = 1;
    coord_msg_t *m = calloc(1, sizeof *m);
    m->type = MSG_FENCE;
    post(co, m);
    post_leader(co, 0, NULL, 0);
}

static void serve(coord_t *co, int flags)
{
    if (!co->registered) {
        if (register_member(co))
            return;
        flags = EV_ALL;
    }
    if (co->fenced) { /* reconnected in time: take the assignment up again */
        co->fenced = 0;
        co->applied_generation = -1;
        flags = EV_ALL;
    }
    if (flags & EV_SNAPSHOT)
        take_snapshot(co);
    if (flags & (EV_MEMBERS | EV_SESSION))
        elect(co);
    if (flags & (EV_LEADER | EV_MEMBERS | EV_SESSION))
        read_leader(co);
    if (co->leader && (flags & (EV_MEMBERS | EV_ACKS | EV_SESSION)))
        co->dirty = 1;
    if (co->leader && co->dirty) {
        co->dirty = 0;
        rebalance(co);
    }
    if (flags & (EV_ASSIGN | EV_SESSION))
        read_assignment(co);
    if (!assign_list_equal(&co->holding, &co->acked_holding))
        write_ack(co);
}

static void *coord_main(void *arg)
{
    coord_t *co = arg;
    int64_t last_tick = 0;
    connect_zk(co);
    for (;;) {
        pthread_mutex_lock(&co->lock);
        if (!co->flags) /* the fencing deadline is checked at least every 100 ms (monotonic) */
            kutil_cond_wait_ms(&co->cond, &co->lock, 100);
        int flags = co->flags;
        co->flags = 0;
        session_t s = co->session;
        int64_t since = co->disconnected_at;
        pthread_mutex_unlock(&co->lock);
        if (flags & EV_STOP)
            break;
        int64_t now = kutil_now_ms();
        if (s == CS_EXPIRED || !co->zh) {
            fence(co, "ZooKeeper session expired");
            FLOG(INFO, COORD, "starting a new ZooKeeper session");
            drop_session(co);
            connect_zk(co);
            continue;
        }
        if (s == CS_CONNECTING) {
            if (co->leader) {
                co->leader = 0;
                post_leader(co, 0, NULL, 0); /* a leader that cannot reach ZooKeeper stops leading */
            }
            if (now - since >= co->fence_ms && co->registered)
                fence(co, "disconnected from ZooKeeper");
            continue;
        }
        if (now - last_tick >= 1000) { /* periodic: delayed rebalances, retries */
            last_tick = now;
            if (co->leader && co->departed)
                co->dirty = 1;
        }
        if (flags || co->dirty || !co->registered || co->fenced)
            serve(co, flags | (co->fenced ? EV_ALL : 0));
    }
    return NULL;
}

coord_t *coord_new(const wconf_t *wc, herder_t *h, h2o_loop_t *loop, ferr_t *err)
{
    coord_t *co = calloc(1, sizeof *co);
    co->wc = wc;
    co->h = h;
    co->loop = loop;
    pthread_mutex_init(&co->lock, NULL);
    kutil_cond_init(&co->cond);
    char url[512];
    co->rest_url = strdup(wconf_rest_url(wc, url, sizeof url));
    wconf_worker_id(wc, co->worker_id, sizeof co->worker_id);
    if (asprintf(&co->base, "%s/ferry/%s", wc->zk_root, wc->group_id) < 0)
        abort();
    co->members_path = path_join(co->base, "members");
    co->acks_path = path_join(co->base, "acks");
    co->assign_path = path_join(co->base, "assignment");
    co->leader_path = path_join(co->base, "leader");
    co->buf = malloc(ZBUF_MAX);
    co->fence_ms = wc->session_timeout_ms / 3 - 500;
    if (co->fence_ms < 200)
        co->fence_ms = 200;
    co->applied_generation = -1;
    zoo_set_debug_level(ZOO_LOG_LEVEL_ERROR);
    co->queue = h2o_multithread_create_queue(loop);
    h2o_multithread_register_receiver(co->queue, &co->recv, on_msgs);
    /* Until the group says otherwise this worker leads nothing and runs nothing. */
    assign_list_t none;
    assign_list_init(&none);
    herder_set_leader(h, 0, NULL, 0);
    herder_set_assignment(h, 0, &none);
    herder_on_change(h, on_herder_change, co);
    on_herder_change(co);
    pthread_create(&co->thread, NULL, coord_main, co);
    (void)err;
    return co;
}

void coord_stop(coord_t *co)
{
    if (!co || !co->thread)
        return;
    signal_flags(co, EV_STOP);
    pthread_join(co->thread, NULL);
    co->thread = 0;
    evq_drain(co->loop); /* deliver the last decisions while the herder still exists */
    herder_on_change(co->h, NULL, NULL);
}

void coord_destroy(coord_t *co)
{
    if (!co)
        return;
    coord_stop(co);
    drop_session(co); /* deletes our ephemeral znodes at once: the others rebalance now */
    h2o_multithread_unregister_receiver(co->queue, &co->recv);
    h2o_multithread_destroy_queue(co->queue);
    members_free(co);
    last_clear(co);
    while (co->departed) {
        departed_t *d = co->departed;
        co->departed = d->next;
        assign_list_dispose(&d->items);
        free(d);
    }
    assign_list_dispose(&co->holding);
    assign_list_dispose(&co->configured);
    assign_list_dispose(&co->acked_holding);
    assign_list_dispose(&co->snap_holding);
    assign_list_dispose(&co->snap_configured);
    free(co->buf);
    free(co->base);
    free(co->members_path);
    free(co->acks_path);
    free(co->assign_path);
    free(co->leader_path);
    free(co->rest_url);
    pthread_cond_destroy(&co->cond);
    pthread_mutex_destroy(&co->lock);
    free(co);
}

/* hostctl-launch, compiled: a container's recorded start without starting Python.
 *
 *     hostctl-launch launch [--user] NAME
 *
 * What a container unit's ExecStart= runs when `hostctl install` could build it. It
 * reads RUN/launch/NAME.fast (written beside the start record by the full start,
 * hostctl/launcher/fastrecord.py, which describes the format; RUN is $HOSTCTL_RUN_DIR
 * or /run/hostctl) and does what hostctl.launcher.quick does for a record without
 * network, pod, health check or notify: the launcher leaves the unit's cgroup (in a
 * thread), the record's checks run under the store's shared gc lock (the environment,
 * every content and presence signature, the absent paths, the listings), the overlay
 * is mounted, the bundle written with this start's cgroup, `runc create` spawned,
 * MAINPID= and READY=1 sent (BARRIER=1 waits until systemd took them), and the
 * container started through exec.fifo as hostctl.runtime.runc.Runc.start_created does
 * (runc start where runc left no exec.fifo; RUNTIME start for another runtime: crun).
 *
 * With --user (a user's container, rootless: RUN is $HOSTCTL_RUN_DIR or
 * $XDG_RUNTIME_DIR/hostctl) it does what hostctl.launcher.quickuser does for a record
 * on pasta's network, host or none: the fast record's layout adds the host's default
 * route (a doubt when it changed), the recorded id maps and the tools that write them,
 * and pasta's recorded command. After the checks it becomes root of a new user and
 * mount namespace (newuidmap and newgidmap, forked first, write the maps from outside),
 * a thread makes the network namespace, pasta connects it while the overlay is mounted
 * and `runc create` runs, and MAINPID= waits until pasta's first process exited 0. A
 * doubt once in the user namespace (pasta failed, a mount, write or `runc create`
 * failed) cannot leave it: the record is dropped and the Python launcher is exec'd with
 * HOSTCTL_ENTERED_MAPS (the maps: hostctl.launcher.quickuser.ENTERED_ENV), which makes
 * the full start in this namespace and cleans up what this program made first.
 *
 * Any doubt before MAINPID= is sent (not started by systemd, another verb, no fast
 * record or one of another format, a signature that differs, a failed mount, write or
 * `runc create`) execs the Python launcher (HOSTCTL_PYTHON -sSE HOSTCTL_ENTRY, set when
 * compiling) with the same arguments: it checks the record itself, and what this
 * program did leaves the record's absent paths behind, so it makes the full start,
 * which cleans up first. After MAINPID= (the init ended before its start) it says so
 * in the journal, drops the record and exits 1, as the Python launcher does.
 *
 * C99, POSIX and Linux only. Build: hostctl/units/gencompile.py.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <poll.h>
#include <pthread.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sched.h>
#include <signal.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#ifndef HOSTCTL_PYTHON
#error "compile with -DHOSTCTL_PYTHON='\"/path/python\"' -DHOSTCTL_ENTRY='\"/path/entry.py\"'"
#endif

#ifndef HOSTCTL_CGROUP_ROOT  /* the unit tests' own */
#define HOSTCTL_CGROUP_ROOT "/sys/fs/cgroup"
#endif

#define MAGIC "hostctl-launchfast 1"
#define MAGIC_USER "hostctl-launchfast-user 1"
#define NETNS_PLACEHOLDER "\"@hostctl-netns@\""
#define ENTERED_ENV "HOSTCTL_ENTERED_MAPS"
/* hostctl.launcher.record.RECORDED_START */
#define RECORDED_START "starting as the last full start did (its start record)"
#define PLACEHOLDER "\"@hostctl-cgroups-path@\""
#define MAX_RECORD (64L * 1024 * 1024)

extern char **environ;
static char *g_name;
static int g_user;              /* launch --user NAME */
static char g_entered[8192];    /* the maps, once in the user namespace made here */

static const char *const VOLATILE[] = {  /* hostctl.launcher.record.VOLATILE_ENV */
    "INVOCATION_ID", "NOTIFY_SOCKET", "JOURNAL_STREAM", "SYSTEMD_EXEC_PID", "MANAGERPID",
    "WATCHDOG_PID", "WATCHDOG_USEC", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES",
    "MAINPID", "SERVICE_RESULT", "EXIT_CODE", "EXIT_STATUS", "MONITOR_SERVICE_RESULT",
    "MONITOR_EXIT_CODE", "MONITOR_EXIT_STATUS", "MONITOR_INVOCATION_ID", "MONITOR_UNIT",
    "TRIGGER_UNIT", "TRIGGER_PATH", "TRIGGER_TIMER_REALTIME_USEC",
    "TRIGGER_TIMER_MONOTONIC_USEC", NULL,
};

/* ---- the fallback ------------------------------------------------------------------ */

static pthread_t g_thread;  /* leave_unit_cgroup's */
static int g_thread_started;
static pthread_t g_net_thread;  /* network_namespace's (a user's container on pasta) */
static int g_net_started;
static pid_t g_pasta;  /* pasta's first process, until reaped */
static char g_record[4200], g_fast[4200];  /* RUN/launch/NAME.record and .fast */

/* The Python launcher finds itself in UNIT/supervisor when this one moved there: it
 * takes UNIT as the unit's cgroup then (hostctl.runtime.cgroups.unit_cgroup). */
static void full_launcher(void) __attribute__((noreturn));
static void full_launcher(void)
{
    if (g_thread_started)
        pthread_join(g_thread, NULL);
    if (g_net_started)
        pthread_join(g_net_thread, NULL);
    if (g_pasta > 0) {  /* its PID file written before the full start's cleanup reads it */
        int status;
        waitpid(g_pasta, &status, 0);
    }
    if (g_entered[0]) {  /* cannot leave the namespace: the full start runs in it */
        unlink(g_record);
        unlink(g_fast);
        if (setenv(ENTERED_ENV, g_entered, 1) != 0)
            _exit(1);
    }
    char *argv[] = {HOSTCTL_PYTHON, "-sSE", HOSTCTL_ENTRY, "launch", g_name, NULL, NULL};
    if (g_user)
        argv[4] = "--user", argv[5] = g_name;
    execv(HOSTCTL_PYTHON, argv);
    fprintf(stderr, "hostctl: cannot run %s: %s\n", HOSTCTL_PYTHON, strerror(errno));
    _exit(1);
}

/* ---- the fast record: NUL-terminated fields ---------------------------------------- */

struct reader {
    char *pos, *end;
};

static char *field(struct reader *r)
{
    char *start = r->pos;
    char *nul = memchr(start, '\0', (size_t)(r->end - start));
    if (!nul)
        full_launcher();  /* truncated */
    r->pos = nul + 1;
    return start;
}

static long count(struct reader *r)
{
    char *text = field(r), *rest;
    errno = 0;
    long n = strtol(text, &rest, 10);
    if (errno || rest == text || *rest || n < 0 || n > 1000000)
        full_launcher();
    return n;
}

static char *read_all(const char *path, size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || st.st_size <= 0 || st.st_size > MAX_RECORD)
        full_launcher();
    char *data = malloc((size_t)st.st_size);
    size_t done = 0;
    while (data && done < (size_t)st.st_size) {
        ssize_t got = read(fd, data + done, (size_t)st.st_size - done);
        if (got <= 0)
            full_launcher();
        done += (size_t)got;
    }
    if (!data)
        full_launcher();
    close(fd);
    *size = done;
    return data;
}

/* ---- the checks (hostctl.launcher.record.is_current) ------------------------------- */

static int cmp_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_volatile(const char *entry)
{
    size_t len = strcspn(entry, "=");
    for (const char *const *v = VOLATILE; *v; v++)
        if (strlen(*v) == len && strncmp(*v, entry, len) == 0)
            return 1;
    return 0;
}

static int same_environment(struct reader *r)
{
    long n = count(r), have = 0;
    char **recorded = malloc(sizeof(char *) * (size_t)(n + 1));
    size_t total = 0;
    while (environ[total])
        total++;
    char **own = malloc(sizeof(char *) * (total + 1));
    if (!recorded || !own)
        full_launcher();
    for (long i = 0; i < n; i++)
        recorded[i] = field(r);
    for (size_t i = 0; i < total; i++)
        if (strchr(environ[i], '=') && !is_volatile(environ[i]))
            own[have++] = environ[i];
    if (have != n)
        return 0;
    qsort(own, (size_t)have, sizeof(char *), cmp_strings);  /* recorded: sorted */
    for (long i = 0; i < n; i++)
        if (strcmp(own[i], recorded[i]) != 0)
            return 0;
    return 1;
}

/* hostctl.launcher.record.content_signature / presence_signature, as text */
static void signature(const char *path, int content, char *out, size_t size)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        snprintf(out, size, "-");
    } else if (content) {
        snprintf(out, size, "%u %llu %llu %lld %lld %lld", (unsigned)st.st_mode,
                 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
                 (long long)st.st_size,
                 (long long)st.st_mtim.tv_sec * 1000000000LL + st.st_mtim.tv_nsec,
                 (long long)st.st_ctim.tv_sec * 1000000000LL + st.st_ctim.tv_nsec);
    } else {
        snprintf(out, size, "%u %llu %llu %llu", (unsigned)st.st_mode,
                 (unsigned long long)st.st_dev, (unsigned long long)st.st_ino,
                 (unsigned long long)st.st_rdev);
    }
}

static int same_signatures(struct reader *r, int content)
{
    char own[160];
    int same = 1;
    for (long i = 0, n = count(r); i < n; i++) {
        char *path = field(r), *recorded = field(r);
        if (same) {
            signature(path, content, own, sizeof(own));
            same = strcmp(own, recorded) == 0;
        }
    }
    return same;
}

static int all_absent(struct reader *r)
{
    struct stat st;
    int absent = 1;
    for (long i = 0, n = count(r); i < n; i++)
        if (lstat(field(r), &st) == 0)
            absent = 0;
    return absent;
}

/* hostctl.launcher.record.listing: the names ending with SUFFIX, sorted, joined by "/"
 * (no name holds a "/") */
static int same_listing(const char *dir, const char *suffix, const char *recorded)
{
    DIR *d = opendir(dir);
    size_t n = 0, cap = 16, slen = strlen(suffix), total = 1;
    char **names = malloc(sizeof(char *) * cap);
    if (!names)
        full_launcher();
    for (struct dirent *e; d && (e = readdir(d));) {
        size_t len = strlen(e->d_name);
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..") || len < slen
            || strcmp(e->d_name + len - slen, suffix) != 0)
            continue;
        if (n == cap && !(names = realloc(names, sizeof(char *) * (cap *= 2))))
            full_launcher();
        if (!(names[n++] = strdup(e->d_name)))
            full_launcher();
        total += len + 1;
    }
    if (d)
        closedir(d);
    qsort(names, n, sizeof(char *), cmp_strings);
    char *joined = malloc(total);
    if (!joined)
        full_launcher();
    joined[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (i)
            strcat(joined, "/");
        strcat(joined, names[i]);
    }
    return strcmp(joined, recorded) == 0;
}

static int same_listings(struct reader *r)
{
    int same = 1;
    for (long i = 0, n = count(r); i < n; i++) {
        char *dir = field(r), *suffix = field(r), *names = field(r);
        same = same && same_listing(dir, suffix, names);
    }
    return same;
}

/* ---- the unit's cgroup (hostctl.runtime.cgroups.unit_cgroup), in a thread ---------- */

static char g_cgroup[4096];
static int g_cgroup_found;

static void *leave_unit_cgroup(void *unused)
{
    (void)unused;
    char text[8192], path[4200], pid[32];
    int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
    ssize_t got = fd < 0 ? -1 : read(fd, text, sizeof(text) - 1);
    if (fd >= 0)
        close(fd);
    if (got <= 0)
        return NULL;
    text[got] = '\0';
    for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
        if (strncmp(line, "0::", 3) != 0)
            continue;
        size_t len = strcspn(line + 3, "\n");
        if (len == 0 || len >= sizeof(g_cgroup))
            return NULL;
        memcpy(g_cgroup, line + 3, len);
        g_cgroup[len] = '\0';
        g_cgroup_found = 1;
        break;
    }
    if (!g_cgroup_found || access(HOSTCTL_CGROUP_ROOT "/cgroup.controllers", F_OK) != 0)
        return NULL;
    snprintf(path, sizeof(path), HOSTCTL_CGROUP_ROOT "%s/supervisor", g_cgroup);
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        return NULL;  /* not delegated to us: runc still works without controllers */
    strcat(path, "/cgroup.procs");
    fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        int len = snprintf(pid, sizeof(pid), "%d", (int)getpid());
        (void)!write(fd, pid, (size_t)len);  /* as the Python launcher: not fatal */
        close(fd);
    }
    return NULL;
}

/* ---- the start's own steps ---------------------------------------------------------- */

static int make_dirs(const char *path, mode_t mode)
{
    char copy[4096];
    if (strlen(path) >= sizeof(copy))
        return -1;
    strcpy(copy, path);
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    return mkdir(copy, mode) != 0 && errno != EEXIST ? -1 : 0;
}

static int write_file(const char *dir, const char *name, const char *text, size_t len)
{
    char path[4200];
    snprintf(path, sizeof(path), "%s%s%s", dir, name ? "/" : "", name ? name : "");
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd < 0)
        return -1;
    for (size_t done = 0; done < len;) {
        ssize_t put = write(fd, text + done, len - done);
        if (put <= 0) {
            close(fd);
            return -1;
        }
        done += (size_t)put;
    }
    return close(fd);
}

/* hostctl.runtime.rootfs.mount_rootfs: upper and work under SCRATCH, lowerdirs
 * relative to LAYER_BASE (the mount resolves them against the working directory) */
static int mount_rootfs(const char *scratch, const char *base, const char *options,
                        const char *target)
{
    char upper[4200], work[4200];
    snprintf(upper, sizeof(upper), "%s/upper", scratch);
    snprintf(work, sizeof(work), "%s/work", scratch);
    if (make_dirs(upper, 0777) || make_dirs(work, 0777) || make_dirs(target, 0777))
        return -1;
    int cwd = open(".", O_RDONLY | O_CLOEXEC);
    if (cwd < 0 || chdir(base) != 0)
        return -1;
    int rc = mount("overlay", target, "overlay", 0, options);
    if (fchdir(cwd) != 0)
        rc = -1;
    close(cwd);
    return rc;
}

/* TEXT with PLACEHOLDER (a JSON string) replaced by VALUE as a JSON string */
static char *with_string(const char *text, const char *placeholder, const char *value,
                         size_t *len)
{
    const char *at = strstr(text, placeholder);
    char *json = malloc(strlen(value) * 6 + 3);
    size_t n = 0;
    if (!at || !json)
        return NULL;
    json[n++] = '"';
    for (const unsigned char *c = (const unsigned char *)value; *c; c++) {
        if (*c == '"' || *c == '\\') {
            json[n++] = '\\';
            json[n++] = (char)*c;
        } else if (*c < 0x20) {
            n += (size_t)sprintf(json + n, "\\u%04x", *c);
        } else {
            json[n++] = (char)*c;
        }
    }
    json[n++] = '"';
    size_t head = (size_t)(at - text), tail = strlen(at + strlen(placeholder));
    char *out = malloc(head + n + tail + 1);
    if (!out)
        return NULL;
    memcpy(out, text, head);
    memcpy(out + head, json, n);
    memcpy(out + head + n, at + strlen(placeholder), tail + 1);
    *len = head + n + tail;
    free(json);
    return out;
}

/* config.json's text with the placeholder replaced by CGROUP's container cgroup
 * (hostctl.runtime.cgroups.container_cgroup) */
static char *with_cgroup(const char *config, const char *cgroup, size_t *len)
{
    char full[4200];
    size_t keep = strlen(cgroup);
    while (keep && cgroup[keep - 1] == '/')
        keep--;
    if ((size_t)snprintf(full, sizeof(full), "%.*s/container", (int)keep, cgroup)
        >= sizeof(full))
        return NULL;
    return with_string(config, PLACEHOLDER, full, len);
}

/* hostctl.runtime.runc._clean_env: without NOTIFY_SOCKET and LISTEN_FDS, PATH set */
static char **runtime_env(void)
{
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = malloc(sizeof(char *) * (n + 2));
    size_t k = 0;
    int path = 0;
    if (!env)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (!strncmp(environ[i], "NOTIFY_SOCKET=", 14) || !strncmp(environ[i], "LISTEN_FDS=", 11))
            continue;
        path = path || !strncmp(environ[i], "PATH=", 5);
        env[k++] = environ[i];
    }
    if (!path)
        env[k++] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
    env[k] = NULL;
    return env;
}

/* ARGV run with this process's stdout and stderr, /dev/null as stdin; 0 on success */
static int run(char **argv)
{
    char **env = runtime_env();
    posix_spawn_file_actions_t actions;
    pid_t pid;
    int status;
    if (!env || posix_spawn_file_actions_init(&actions) != 0)
        return -1;
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
    int rc = posix_spawn(&pid, argv[0], &actions, NULL, argv, env);
    posix_spawn_file_actions_destroy(&actions);
    free(env);
    if (rc != 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status)
        || WEXITSTATUS(status) != 0)
        return -1;
    return 0;
}

/* runc create (hostctl.runtime.runc.Runc.create); init's PID */
static int runc_create(const char *runtime, const char *root, const char *bundle,
                       const char *id)
{
    char log[4200], pid_file[4200];
    snprintf(log, sizeof(log), "%s/runtime.log", bundle);
    snprintf(pid_file, sizeof(pid_file), "%s/pid", bundle);
    char *argv[] = {(char *)runtime, "--root", (char *)root, "--log", log, "--log-format",
                    "json", "create", "--bundle", (char *)bundle, "--pid-file", pid_file,
                    (char *)id, NULL};
    if (run(argv) != 0)
        return -1;
    char text[32] = "";
    int fd = open(pid_file, O_RDONLY | O_CLOEXEC);
    ssize_t got = fd < 0 ? -1 : read(fd, text, sizeof(text) - 1);
    if (fd >= 0)
        close(fd);
    if (got <= 0)
        return -1;
    text[got] = '\0';
    long init = strtol(text, NULL, 10);
    return init > 0 ? (int)init : -1;
}

/* ---- systemd (hostctl.launcher.notify) ---------------------------------------------- */

static int notify_socket(void)
{
    const char *address = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!address || !*address || strlen(address) >= sizeof(sa.sun_path))
        return -1;
    strcpy(sa.sun_path, address);
    if (address[0] == '@')
        sa.sun_path[0] = '\0';
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + strlen(address));
    int sock = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (sock >= 0 && connect(sock, (struct sockaddr *)&sa, len) != 0) {
        close(sock);
        return -1;
    }
    return sock;
}

static int notify(const char *text)
{
    int sock = notify_socket();
    if (sock < 0)
        return -1;
    ssize_t sent = send(sock, text, strlen(text), 0);
    close(sock);
    return sent < 0 ? -1 : 0;
}

/* sd_notify_barrier: BARRIER=1 with a pipe's write end, closed by systemd once there */
static void barrier(void)
{
    int sock = notify_socket(), fds[2];
    if (sock < 0)
        return;
    if (pipe2(fds, O_CLOEXEC) != 0) {
        close(sock);
        return;
    }
    char control[CMSG_SPACE(sizeof(int))];
    memset(control, 0, sizeof(control));
    struct iovec iov = {.iov_base = "BARRIER=1", .iov_len = 9};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control,
                         .msg_controllen = sizeof(control)};
    struct cmsghdr *cmsg = CMSG_FIRSTHDR(&msg);
    cmsg->cmsg_level = SOL_SOCKET;
    cmsg->cmsg_type = SCM_RIGHTS;
    cmsg->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(cmsg), &fds[1], sizeof(int));
    sendmsg(sock, &msg, 0);
    close(sock);
    close(fds[1]);
    struct pollfd p = {.fd = fds[0], .events = POLLHUP};
    poll(&p, 1, 5000);
    close(fds[0]);
}

/* ---- the start through exec.fifo (hostctl.runtime.runc.Runc.start_created), else
 * runc start ------------------------------------------------------------------------- */

static int alive(int pid)
{
    char path[64], stat[512];
    snprintf(path, sizeof(path), "/proc/%d/stat", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    ssize_t got = fd < 0 ? -1 : read(fd, stat, sizeof(stat) - 1);
    if (fd >= 0)
        close(fd);
    if (got <= 0)
        return 0;
    stat[got] = '\0';
    char *paren = strrchr(stat, ')');
    return paren && paren[1] == ' ' && paren[2] != 'Z' && paren[2] != 'X';
}

/* as hostctl.launcher.quick: the record is dropped, the unit's cleanup (without it, the
 * full one) removes what the start made */
static void fail_started(const char *why, int pid)
{
    fprintf(stderr, "hostctl launch %s: %s (init PID %d)\n", g_name, why, pid);
    unlink(g_record);
    unlink(g_fast);
    exit(1);
}

static void start_created(const char *runtime, const char *runtime_name, const char *root,
                          const char *bundle, const char *id, int pid)
{
    char fifo[4200], data[64];
    snprintf(fifo, sizeof(fifo), "%s/%s/exec.fifo", root, id);
    /* runc's protocol only: crun's init reads its exec.fifo, `crun start` writes it */
    int fd = strcmp(runtime_name, "runc") ? -1 : open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0 && (errno == ENOENT || strcmp(runtime_name, "runc"))) {
        /* another runtime, or a runc that starts otherwise: RUNTIME start */
        char log[4200];
        snprintf(log, sizeof(log), "%s/runtime.log", bundle);
        char *argv[] = {(char *)runtime, "--root", (char *)root, "--log", log,
                        "--log-format", "json", "start", (char *)id, NULL};
        if (run(argv) != 0)
            fail_started("runc start failed (see runtime.log in the bundle)", pid);
        return;
    }
    if (fd < 0)
        fail_started("cannot open exec.fifo", pid);
    struct pollfd p = {.fd = fd, .events = POLLIN};
    ssize_t got = -1;
    for (;;) {
        if (poll(&p, 1, 100) > 0) {
            got = read(fd, data, sizeof(data));
            break;
        }
        if (!alive(pid)) {  /* it may have written and gone on between two polls */
            got = read(fd, data, sizeof(data));
            break;
        }
    }
    close(fd);
    if (got <= 0)
        fail_started("the container's init ended before it was started", pid);
    unlink(fifo);
}

/* ---- a user's container (hostctl.launcher.quickuser) -------------------------------- */

#define MAX_MAP 60  /* numbers in an id map: the kernel takes 340 lines, newuidmap fewer */

/* the gateway field of the host's IPv4 default route in /proc/net/route, or "-"
 * (hostctl.launcher.quickuser.default_route) */
static void default_route(char *out, size_t size)
{
    char line[512], *save;
    FILE *f = fopen("/proc/net/route", "re");
    snprintf(out, size, "-");
    if (!f)
        return;
    for (int header = 1; fgets(line, sizeof(line), f); header = 0) {
        char *iface = strtok_r(line, " \t\n", &save);
        char *dest = iface ? strtok_r(NULL, " \t\n", &save) : NULL;
        char *gateway = dest ? strtok_r(NULL, " \t\n", &save) : NULL;
        if (!header && gateway && !strcmp(dest, "00000000") && strcmp(gateway, "00000000")) {
            snprintf(out, size, "%s", gateway);
            break;
        }
    }
    fclose(f);
}

/* MAP ("INSIDE OUTSIDE COUNT ..." triples) split into WORDS; their number, or -1 */
static int map_words(char *map, char **words)
{
    int n = 0;
    char *save, *copy = strdup(map);
    for (char *w = copy ? strtok_r(copy, " ", &save) : NULL; w; w = strtok_r(NULL, " ", &save)) {
        char *rest;
        if (n == MAX_MAP || strtol(w, &rest, 10) < 0 || rest == w || *rest)
            return -1;
        words[n++] = w;
    }
    return n && n % 3 == 0 ? n : -1;
}

/* a child that waits for "go" on GO, then runs TOOL for this process with MAP (its copy
 * of GO_WRITE closed: the launcher's closing it says no "go" comes) */
static pid_t map_helper(char *tool, char **words, int n, int go, int go_write)
{
    char pid[32], *argv[MAX_MAP + 3];
    snprintf(pid, sizeof(pid), "%d", (int)getpid());
    argv[0] = tool, argv[1] = pid;
    memcpy(argv + 2, words, sizeof(char *) * (size_t)n);
    argv[n + 2] = NULL;
    pid_t child = fork();
    if (child == 0) {
        char said[2];
        close(go_write);
        if (read(go, said, 2) == 2 && !memcmp(said, "go", 2))
            execv(tool, argv);
        _exit(127);
    }
    return child;
}

static int write_text(const char *path, const char *text)
{
    return write_file(path, NULL, text, strlen(text));
}

/* a user namespace's failure the full start could not mend: as the Python launcher, the
 * record is dropped (the next start is a full one) and the start fails */
static void fail_user_namespace(const char *why) __attribute__((noreturn));
static void fail_user_namespace(const char *why)
{
    fprintf(stderr, "hostctl: %s\n", why);
    unlink(g_record);
    unlink(g_fast);
    exit(1);
}

static int g_netns = -1;

/* a new network namespace (owned by the new user namespace), open: made by a thread
 * of its own, which leaves the process's own namespace as it is */
static void *network_namespace(void *unused)
{
    (void)unused;
    if (unshare(CLONE_NEWNET) == 0)
        g_netns = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    return NULL;
}

/* Become root of a new user and mount namespace with the maps UID_MAP and GID_MAP,
 * written by TOOLS (newuidmap, newgidmap: forked first, they must run outside), or by
 * this process (no tools: the user's own ids); with NETWORK, a thread makes the network
 * namespace meanwhile. A failure to unshare is a doubt (the Python launcher sees it
 * too); once in, a map or mount that fails ends the start. */
static void enter(char *uid_map, char *gid_map, char **tools, long ntools, int network)
{
    char *words[2][MAX_MAP];
    int counts[2] = {map_words(uid_map, words[0]), map_words(gid_map, words[1])};
    int go[2], statuses = 0;
    pid_t helpers[2];
    if (counts[0] < 0 || counts[1] < 0 || (ntools != 0 && ntools != 2)
        || (!ntools && (counts[0] != 3 || counts[1] != 3)) || pipe2(go, O_CLOEXEC) != 0)
        full_launcher();
    int failed = 0;
    for (long i = 0; i < ntools; i++)
        failed |= (helpers[i] = map_helper(tools[i], words[i], counts[i], go[0], go[1])) < 0;
    close(go[0]);
    failed = failed || unshare(CLONE_NEWUSER | CLONE_NEWNS) != 0;
    if (!failed)
        (void)!write(go[1], "gogo", (size_t)(2 * ntools));  /* each reads its own "go" */
    close(go[1]);  /* the helpers see the end of the pipe: "go", or nothing */
    if (!failed && network && pthread_create(&g_net_thread, NULL, network_namespace, NULL) == 0)
        g_net_started = 1;
    for (long i = 0; i < ntools; i++) {
        int status;
        if (helpers[i] < 0 || waitpid(helpers[i], &status, 0) != helpers[i]
            || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
            statuses = 1;
    }
    if (failed)
        full_launcher();  /* not entered: the Python launcher tries, and says why */
    if (g_net_started)  /* made while the maps were written */
        pthread_join(g_net_thread, NULL), g_net_started = 0;
    if (statuses)
        fail_user_namespace("newuidmap/newgidmap failed (hint: check the user's ranges in "
                            "/etc/subuid and /etc/subgid)");
    if (!ntools) {
        char uid[96], gid[96];
        snprintf(uid, sizeof(uid), "%s\n", uid_map);
        snprintf(gid, sizeof(gid), "%s\n", gid_map);
        if (write_text("/proc/self/uid_map", uid) || write_text("/proc/self/setgroups", "deny")
            || write_text("/proc/self/gid_map", gid))
            fail_user_namespace("cannot write the user namespace's id maps");
    }
    if (mount("none", "/", NULL, MS_REC | MS_PRIVATE, NULL) != 0)
        fail_user_namespace("cannot make mounts private");
    if ((size_t)snprintf(g_entered, sizeof(g_entered), "%s;%s", uid_map, gid_map)
        >= sizeof(g_entered))
        fail_user_namespace("the id maps are too long");
}

/* pasta with the recorded ARGS (the namespace placeholder: NETNS's path), which
 * daemonizes once the namespace is connected; its first process */
static pid_t spawn_pasta(char **args, long n, char *pid_file, int netns)
{
    char dir[4200], fd_path[64], **argv = malloc(sizeof(char *) * (size_t)(n + 1));
    posix_spawnattr_t attr;
    sigset_t pipe;
    pid_t pid;
    snprintf(dir, sizeof(dir), "%s", pid_file);
    char *slash = strrchr(dir, '/');
    if (!argv || n < 1 || !slash || slash == dir)
        return -1;
    *slash = '\0';
    snprintf(fd_path, sizeof(fd_path), "/proc/self/fd/%d", netns);
    for (long i = 0; i < n; i++)
        argv[i] = strcmp(args[i], "@hostctl-netns@") ? args[i] : fd_path;
    argv[n] = NULL;
    /* SIGPIPE back to its default (systemd ignores it): pasta takes an ignored SIGPIPE
     * for a failure to install its own handlers */
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    if (make_dirs(dir, 0777) || posix_spawnattr_init(&attr) != 0)
        return -1;
    posix_spawnattr_setsigdefault(&attr, &pipe);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
    fcntl(netns, F_SETFD, 0);
    int rc = posix_spawn(&pid, argv[0], NULL, &attr, argv, environ);
    fcntl(netns, F_SETFD, FD_CLOEXEC);
    posix_spawnattr_destroy(&attr);
    free(argv);
    return rc == 0 ? pid : -1;
}

/* wait until pasta connected the namespace (its first process exits 0); else a doubt */
static void pasta_ready(void)
{
    int status;
    pid_t pid = g_pasta;
    g_pasta = 0;
    if (waitpid(pid, &status, 0) != pid)
        full_launcher();
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return;
    fprintf(stderr, "hostctl: the recorded start does not apply (pasta exited with %d): "
            "starting in full\n", WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status));
    full_launcher();
}

/* ---- main ----------------------------------------------------------------------------- */

int main(int argc, char **argv)
{
    g_user = argc == 4 && !strcmp(argv[2], "--user");
    if ((argc != 3 && !g_user) || strcmp(argv[1], "launch") != 0 || argv[argc - 1][0] == '-') {
        g_name = argc > 2 ? argv[argc - 1] : "";
        char **args = malloc(sizeof(char *) * (size_t)(argc + 3));
        if (!args)
            _exit(1);
        args[0] = HOSTCTL_PYTHON, args[1] = "-sSE", args[2] = HOSTCTL_ENTRY;
        for (int i = 1; i <= argc; i++)
            args[i + 2] = argv[i];
        execv(HOSTCTL_PYTHON, args);
        _exit(1);
    }
    g_name = argv[argc - 1];
    const char *invocation = getenv("INVOCATION_ID");
    if (!invocation || !*invocation)
        full_launcher();  /* not started by systemd: no record applies */
    {  /* ps, top and systemctl status show the launcher as "hostctl" */
        int fd = open("/proc/self/comm", O_WRONLY | O_CLOEXEC);
        if (fd >= 0) {
            (void)!write(fd, "hostctl", 7);
            close(fd);
        }
    }
    /* hostctl.launcher.record.record_path */
    char run_dir[4001];
    const char *run = getenv("HOSTCTL_RUN_DIR"), *xdg = getenv("XDG_RUNTIME_DIR");
    if (run)
        snprintf(run_dir, sizeof(run_dir), "%s", run);
    else if (!g_user)
        snprintf(run_dir, sizeof(run_dir), "/run/hostctl");
    else if (xdg && *xdg)
        snprintf(run_dir, sizeof(run_dir), "%s/hostctl", xdg);
    else
        snprintf(run_dir, sizeof(run_dir), "/run/user/%u/hostctl", (unsigned)getuid());
    if ((size_t)snprintf(g_fast, sizeof(g_fast), "%.4000s/launch/%s.fast", run_dir, g_name)
        >= sizeof(g_fast) || (size_t)snprintf(g_record, sizeof(g_record),
                                              "%.4000s/launch/%s.record", run_dir, g_name)
        >= sizeof(g_record)) {
        g_record[0] = g_fast[0] = '\0';
        full_launcher();
    }
    size_t size;
    char *data = read_all(g_fast, &size);
    struct reader r = {data, data + size};
    if (strcmp(field(&r), g_user ? MAGIC_USER : MAGIC) != 0 || strcmp(field(&r), g_name) != 0)
        full_launcher();
    char *store_lock = field(&r), *runc_root = field(&r), *runtime = field(&r);
    char *runtime_file = field(&r), *runtime_name = field(&r), *bundle = field(&r);
    char *scratch = field(&r), *layer_base = field(&r), *options = field(&r);
    char *id = field(&r), *reference = field(&r);
    char *uid_map = NULL, *gid_map = NULL, *tools[2] = {NULL, NULL}, **pasta = NULL;
    char *pid_file = NULL;
    long ntools = 0, npasta = 0;
    if (g_user) {  /* the host's route, the id maps, pasta's command (or none) */
        char route[64], *recorded = field(&r);
        default_route(route, sizeof(route));
        if (strcmp(route, recorded) != 0)
            full_launcher();
        uid_map = field(&r), gid_map = field(&r);
        if ((ntools = count(&r)) > 2)
            full_launcher();
        for (long i = 0; i < ntools; i++)
            tools[i] = field(&r);
        npasta = count(&r);
        if (npasta && !(pasta = malloc(sizeof(char *) * (size_t)npasta)))
            full_launcher();
        for (long i = 0; i < npasta; i++)
            pasta[i] = field(&r);
        pid_file = field(&r);
    }

    /* leaving the unit's cgroup waits for an RCU grace period: in a thread (a user's
     * container: once in its user namespace, which a threaded process cannot enter) */
    if (!g_user) {
        if (pthread_create(&g_thread, NULL, leave_unit_cgroup, NULL) != 0)
            full_launcher();
        g_thread_started = 1;
    }
    int lock = open(store_lock, O_RDWR | O_CLOEXEC);
    if (lock < 0 || flock(lock, LOCK_SH) != 0)
        full_launcher();
    int current = same_environment(&r) && same_signatures(&r, 1) && same_signatures(&r, 0)
                  && all_absent(&r) && same_listings(&r);
    if (!current)
        full_launcher();
    if (g_user) {
        enter(uid_map, gid_map, tools, ntools, npasta > 0);
        if (pthread_create(&g_thread, NULL, leave_unit_cgroup, NULL) != 0)
            full_launcher();
        g_thread_started = 1;
        if (npasta && (g_netns < 0 || (g_pasta = spawn_pasta(pasta, npasta, pid_file,
                                                             g_netns)) <= 0)) {
            g_pasta = 0;
            full_launcher();
        }
    }
    char rootfs[4200];
    snprintf(rootfs, sizeof(rootfs), "%s/rootfs", bundle);
    if (make_dirs(runc_root, 0700) || write_file(runtime_file, NULL, runtime_name,
                                                 strlen(runtime_name))
        || make_dirs(bundle, 0777) || mount_rootfs(scratch, layer_base, options, rootfs))
        full_launcher();
    close(lock);  /* the overlay is mounted: prune sees the snapshots in use from here on */
    for (long i = 0, n = count(&r); i < n; i++) {
        char *name = field(&r), *text = field(&r);
        if (write_file(bundle, name, text, strlen(text)))
            full_launcher();
    }
    char *config = field(&r);
    if (r.pos != r.end)
        full_launcher();
    pthread_join(g_thread, NULL);
    g_thread_started = 0;
    size_t len;
    char *finished = g_cgroup_found ? with_cgroup(config, g_cgroup, &len) : NULL;
    if (finished && npasta) {  /* the namespace made here, as runc opens it */
        char netns[64];
        snprintf(netns, sizeof(netns), "/proc/%d/fd/%d", (int)getpid(), g_netns);
        finished = with_string(finished, NETNS_PLACEHOLDER, netns, &len);
    }
    if (!finished || write_file(bundle, "config.json", finished, len))
        full_launcher();
    if (g_user)  /* as the Python launcher says it */
        fprintf(stderr, "hostctl: %s\n", RECORDED_START);
    int pid = runc_create(runtime, runc_root, bundle, id);
    if (pid < 0)
        full_launcher();
    if (g_pasta > 0)
        pasta_ready();
    /* the init is systemd's before it may run (see hostctl.launcher.handoff.hand_off) */
    char message[4400];
    snprintf(message, sizeof(message), "MAINPID=%d\nREADY=1\nSTATUS=running %s", pid,
             reference);
    notify(message);
    barrier();
    start_created(runtime, runtime_name, runc_root, bundle, id, pid);
    return 0;
}

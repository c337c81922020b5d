/* hostctl-generator, compiled: the render cache's hit without starting Python.
 *
 *     hostctl-generator NORMAL_DIR [EARLY_DIR LATE_DIR]
 *
 * Reads SCOPE.fast (written by the Python generator, hostctl/units/fastcache.py, which
 * describes the format), produces the same stamp lines as hostctl/units/gencache.py for
 * every input tree the file lists and for its own context, and compares them byte for
 * byte. On a hit it writes the stored units and links into NORMAL_DIR as
 * hostctl.units.generator.write_units does, reports the stored messages as its _report
 * does, and exits 0. On anything else (a changed input, another context, a file that is
 * missing, truncated, not ours, of another version, a name that would leave NORMAL_DIR,
 * a failed write) it execs the Python generator, HOSTCTL_PYGEN (set when compiling),
 * with the same arguments and $_HOSTCTL_GENFAST set: its output is the reference.
 *
 * C99 and POSIX only. Build: cc -O2 -DHOSTCTL_PYGEN='"/path/script"' -o OUT genfast.c
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#ifndef HOSTCTL_PYGEN
#error "compile with -DHOSTCTL_PYGEN='\"/path/of/the/python/generator\"'"
#endif

#define MAGIC "hostctl-genfast 1\n"
#define MISS_ENV "_HOSTCTL_GENFAST"
#define PROGRAM "hostctl-generator"
#define KMSG "/dev/kmsg"
#define MAX_CACHE (256L * 1024 * 1024)

extern char **environ;
static char **g_argv;

/* ---- the fallback ------------------------------------------------------------------ */

static void fallback(const char *why) __attribute__((noreturn));
static void fallback(const char *why)
{
    setenv(MISS_ENV, why, 1);
    execv(HOSTCTL_PYGEN, g_argv);
    fprintf(stderr, PROGRAM ": cannot run %s: %s\n", HOSTCTL_PYGEN, strerror(errno));
    _exit(1);
}

static void *xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (!p)
        fallback("memory");
    return p;
}

/* ---- a growing text buffer --------------------------------------------------------- */

struct buf {
    char *data;
    size_t len, cap;
};

static void buf_reserve(struct buf *b, size_t more)
{
    if (b->len + more + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + more + 1)
        cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data)
        fallback("memory");
    b->data = data;
    b->cap = cap;
}

static void buf_printf(struct buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        fallback("format");
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

static void buf_hex(struct buf *b, const char *bytes, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    buf_reserve(b, 2 * len);
    for (size_t i = 0; i < len; i++) {
        b->data[b->len++] = digits[(unsigned char)bytes[i] >> 4];
        b->data[b->len++] = digits[(unsigned char)bytes[i] & 15];
    }
    b->data[b->len] = '\0';
}

/* ---- the cache file: read whole, walked line by line ------------------------------- */

static char *g_data;
static size_t g_size, g_pos;

/* The next line (without its newline) or NULL at a truncated end. */
static char *next_line(size_t *len)
{
    if (g_pos >= g_size)
        return NULL;
    char *start = g_data + g_pos;
    char *nl = memchr(start, '\n', g_size - g_pos);
    if (!nl)
        return NULL;
    *len = (size_t)(nl - start);
    g_pos += *len + 1;
    return start;
}

static char *peek_line(size_t *len)
{
    size_t saved = g_pos;
    char *line = next_line(len);
    g_pos = saved;
    return line;
}

/* The next stored line must be exactly B's text. */
static void expect(struct buf *b)
{
    size_t len;
    char *line = next_line(&len);
    if (!line || len != b->len || memcmp(line, b->data, len) != 0)
        fallback("changed");
    b->len = 0;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* HEX (LEN digits) decoded into a fresh NUL-terminated string; a NUL byte is a doubt. */
static char *unhex(const char *hex, size_t len)
{
    if (len % 2)
        fallback("corrupt");
    char *out = xmalloc(len / 2 + 1);
    for (size_t i = 0; i < len / 2; i++) {
        int hi = hexval(hex[2 * i]), lo = hexval(hex[2 * i + 1]);
        if (hi < 0 || lo < 0 || (hi | lo) == 0)
            fallback("corrupt");
        out[i] = (char)(hi << 4 | lo);
    }
    out[len / 2] = '\0';
    return out;
}

/* The space-separated field N (0-based) of LINE, as pointer and length. */
static const char *field(const char *line, size_t len, int n, size_t *flen)
{
    const char *p = line, *end = line + len;
    for (; n > 0; n--) {
        p = memchr(p, ' ', (size_t)(end - p));
        if (!p)
            fallback("corrupt");
        p++;
    }
    const char *sp = memchr(p, ' ', (size_t)(end - p));
    *flen = (size_t)((sp ? sp : end) - p);
    return p;
}

static int read_all(int fd, char *data, size_t size)
{
    size_t done = 0;
    while (done < size) {
        ssize_t n = read(fd, data + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        done += (size_t)n;
    }
    char extra;
    ssize_t n;
    while ((n = read(fd, &extra, 1)) < 0 && errno == EINTR)
        ;
    return n == 0 ? 0 : -1; /* grown meanwhile: a doubt */
}

static void load(const char *path)
{
    int fd;
    while ((fd = open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC)) < 0
           && errno == EINTR) /* O_NONBLOCK: a FIFO there must not block a boot */
        ;
    if (fd < 0)
        fallback("no cache");
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()
        || (st.st_mode & 022) || st.st_size <= 0 || st.st_size > MAX_CACHE)
        fallback("untrusted cache");
    g_size = (size_t)st.st_size;
    g_data = xmalloc(g_size);
    if (read_all(fd, g_data, g_size) != 0)
        fallback("unreadable cache");
    close(fd);
    if (g_size < sizeof MAGIC - 1 || memcmp(g_data, MAGIC, sizeof MAGIC - 1) != 0)
        fallback("version");
    g_pos = sizeof MAGIC - 1;
}

/* ---- where the cache is (gencache.cache_file) -------------------------------------- */

static const char *scope_name(void)
{
    const char *told = getenv("SYSTEMD_SCOPE");
    if (told && (!strcmp(told, "system") || !strcmp(told, "user")))
        return told;
    return geteuid() == 0 ? "system" : "user";
}

static char *cache_path(const char *scope)
{
    struct buf b = {0};
    const char *told = getenv("HOSTCTL_GENERATOR_CACHE");
    if (told) {
        if (!*told || !strcmp(told, "off"))
            fallback("cache off");
        buf_printf(&b, "%s/%s.fast", told, scope);
    } else if (!strcmp(scope, "system")) {
        buf_printf(&b, "/var/cache/hostctl/generator/system.fast");
    } else {
        const char *home = getenv("HOME"), *xdg = getenv("XDG_CACHE_HOME");
        if (xdg && *xdg)
            buf_printf(&b, "%s/hostctl/generator/user.fast", xdg);
        else if (home && *home)
            buf_printf(&b, "%s/.cache/hostctl/generator/user.fast", home);
        else
            fallback("no HOME"); /* Python asks the password database */
    }
    return b.data;
}

/* ---- the context (fastcache.context_lines) ----------------------------------------- */

static int env_wanted(const char *entry)
{
    static const char *const names[] = {"HOME=", "USER=", "LOGNAME=", "SYSTEMD_SCOPE="};
    if (!strncmp(entry, "HOSTCTL_", 8) || !strncmp(entry, "XDG_", 4))
        return 1;
    for (size_t i = 0; i < sizeof names / sizeof *names; i++)
        if (!strncmp(entry, names[i], strlen(names[i])))
            return 1;
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static size_t key_len(const char *entry)
{
    return (size_t)(strchr(entry, '=') - entry);
}

static void check_context(const char *scope)
{
    struct buf b = {0};
    buf_printf(&b, "G ");
    buf_hex(&b, HOSTCTL_PYGEN, strlen(HOSTCTL_PYGEN));
    expect(&b);
    buf_printf(&b, "C %s %u %u %u", scope, (unsigned)getuid(), (unsigned)geteuid(),
               (unsigned)getgid());
    expect(&b);
    size_t count = 0;
    for (char **e = environ; *e; e++)
        count++;
    char **env = xmalloc(count * sizeof *env);
    size_t n = 0;
    for (char **e = environ; *e; e++)
        if (strchr(*e, '=') && env_wanted(*e))
            env[n++] = *e;
    qsort(env, n, sizeof *env, cmp_str);
    for (size_t i = 0; i < n; i++) {
        /* Python's os.environ keeps one value per name: two would be a doubt */
        if (i && key_len(env[i]) == key_len(env[i - 1])
            && !strncmp(env[i], env[i - 1], key_len(env[i])))
            fallback("duplicate environment");
        buf_printf(&b, "V ");
        buf_hex(&b, env[i], strlen(env[i]));
        expect(&b);
    }
    free(env);
    free(b.data);
}

/* ---- the stamp (gencache.tree_stamp) ----------------------------------------------- */

static void fields(struct buf *b, const struct stat *st)
{
    buf_printf(b, "%llu %llu %llu %lld %lld %lld", (unsigned long long)st->st_mode,
               (unsigned long long)st->st_ino, (unsigned long long)st->st_dev,
               (long long)st->st_size,
               (long long)st->st_mtim.tv_sec * 1000000000LL + st->st_mtim.tv_nsec,
               (long long)st->st_ctim.tv_sec * 1000000000LL + st->st_ctim.tv_nsec);
}

static void path_stamp(struct buf *b, const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        buf_printf(b, "S ");
        fields(b, &st);
    } else {
        buf_printf(b, "M %d", errno);
    }
    expect(b);
}

static char *join(const char *dir, const char *name)
{
    struct buf b = {0};
    size_t len = strlen(dir);
    buf_printf(&b, (len == 0 || dir[len - 1] == '/') ? "%s%s" : "%s/%s", dir, name);
    return b.data;
}

/* ENTRY's own lines; 1 when it is a directory to descend into (entry.is_dir()). */
static int entry_lines(struct buf *b, const char *path, const char *name)
{
    struct stat st, target;
    if (lstat(path, &st) != 0) {
        buf_printf(b, "V ");
        buf_hex(b, name, strlen(name));
        buf_printf(b, " %d", errno);
        expect(b);
        return 0;
    }
    if (!S_ISLNK(st.st_mode)) {
        buf_printf(b, "F ");
        buf_hex(b, name, strlen(name));
        buf_printf(b, " ");
        fields(b, &st);
        expect(b);
        return S_ISDIR(st.st_mode);
    }
    size_t cap = 256;
    char *link = NULL;
    ssize_t n;
    for (;;) {
        link = realloc(link, cap);
        if (!link)
            fallback("memory");
        n = readlink(path, link, cap);
        if (n < 0 || (size_t)n < cap)
            break;
        cap *= 2;
    }
    if (n < 0) {
        buf_printf(b, "V ");
        buf_hex(b, name, strlen(name));
        buf_printf(b, " %d", errno);
        expect(b);
        free(link);
        return 0;
    }
    buf_printf(b, "Y ");
    buf_hex(b, name, strlen(name));
    buf_printf(b, " ");
    fields(b, &st);
    buf_printf(b, " ");
    buf_hex(b, link, (size_t)n);
    free(link);
    expect(b);
    int is_dir = 0;
    if (stat(path, &target) == 0) {
        buf_printf(b, "T ");
        fields(b, &target);
        is_dir = S_ISDIR(target.st_mode);
    } else {
        buf_printf(b, "D %d", errno);
    }
    expect(b);
    return is_dir;
}

static void tree_lines(struct buf *b, const char *dir, long depth)
{
    if (depth < 0) {
        path_stamp(b, dir);
        return;
    }
    DIR *listing = opendir(dir);
    if (!listing) {
        buf_printf(b, "L %d", errno);
        expect(b);
        return;
    }
    size_t n = 0, cap = 16;
    char **names = xmalloc(cap * sizeof *names);
    struct dirent *d;
    for (;;) {
        errno = 0;
        d = readdir(listing);
        if (!d)
            break;
        if (!strcmp(d->d_name, ".") || !strcmp(d->d_name, "..")
            || !strcmp(d->d_name, "__pycache__"))
            continue;
        if (n == cap) {
            cap *= 2;
            names = realloc(names, cap * sizeof *names);
            if (!names)
                fallback("memory");
        }
        names[n++] = strdup(d->d_name);
        if (!names[n - 1])
            fallback("memory");
    }
    if (errno)
        fallback("listing"); /* Python's scandir would raise midway */
    closedir(listing);
    qsort(names, n, sizeof *names, cmp_str);
    for (size_t i = 0; i < n; i++) {
        char *path = join(dir, names[i]);
        if (entry_lines(b, path, names[i]) && depth > 0)
            tree_lines(b, path, depth - 1);
        free(path);
        free(names[i]);
    }
    free(names);
    buf_printf(b, "E");
    expect(b);
}

/* Every "P PATH DEPTH" block, up to the first record that is not one. */
static void check_trees(void)
{
    struct buf b = {0};
    size_t len, flen;
    char *line;
    while ((line = peek_line(&len)) && len > 2 && line[0] == 'P' && line[1] == ' ') {
        const char *hex = field(line, len, 1, &flen);
        char *path = unhex(hex, flen);
        const char *num = field(line, len, 2, &flen);
        if (flen == 0 || flen > 3)
            fallback("corrupt");
        char digits[4] = {0};
        memcpy(digits, num, flen);
        char *end;
        long depth = strtol(digits, &end, 10);
        if (*end || depth < -1 || depth > 8)
            fallback("corrupt");
        /* the same header line back: a path in another spelling is a miss */
        buf_printf(&b, "P ");
        buf_hex(&b, path, strlen(path));
        buf_printf(&b, " %ld", depth);
        expect(&b);
        tree_lines(&b, path, depth);
        free(path);
    }
    free(b.data);
}

/* ---- the outputs (generator.write_units) ------------------------------------------- */

struct out {
    enum { MESSAGE, UNIT, LINK } kind;
    char *a, *b; /* MESSAGE: stderr, kmsg; UNIT: name, text; LINK: link, target */
    size_t alen, blen;
};

static int safe_name(const char *name)
{
    return *name && !strchr(name, '/') && strcmp(name, ".") && strcmp(name, "..");
}

/* A relative path of safe names: it stays inside the output directory. */
static int safe_relative(const char *path)
{
    if (!*path || path[0] == '/')
        return 0;
    char *copy = strdup(path), *save = NULL;
    if (!copy)
        fallback("memory");
    int ok = path[strlen(path) - 1] != '/' && !strstr(path, "//");
    for (char *part = strtok_r(copy, "/", &save); ok && part; part = strtok_r(NULL, "/", &save))
        ok = safe_name(part);
    free(copy);
    return ok;
}

static size_t count_spaces(const char *line, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        n += line[i] == ' ';
    return n;
}

/* Every output record, validated before anything is written. */
static struct out *parse_outputs(size_t *count)
{
    size_t cap = 64, n = 0, len, flen;
    struct out *outs = xmalloc(cap * sizeof *outs);
    const char *last_unit = NULL;
    for (;;) {
        char *line = next_line(&len);
        if (!line)
            fallback("truncated");
        if (len == 1 && line[0] == 'Z')
            break;
        if (len < 2 || line[1] != ' ')
            fallback("corrupt");
        if (n == cap) {
            cap *= 2;
            outs = realloc(outs, cap * sizeof *outs);
            if (!outs)
                fallback("memory");
        }
        if (memchr(line, ' ', len) != line + 1 || count_spaces(line, len) != 2)
            fallback("corrupt"); /* every output record: a letter and two fields */
        struct out *o = &outs[n++];
        const char *f1 = field(line, len, 1, &flen);
        size_t f1len = flen;
        const char *f2 = field(line, len, 2, &flen);
        if (line[0] == 'R') {
            o->kind = MESSAGE;
            o->a = unhex(f1, f1len);
            o->b = unhex(f2, flen);
            o->alen = f1len / 2;
            o->blen = flen / 2;
        } else if (line[0] == 'U') {
            o->kind = UNIT;
            o->a = unhex(f1, f1len);
            if (!safe_name(o->a) || flen == 0 || flen > 10)
                fallback("unsafe name");
            char digits[11] = {0};
            memcpy(digits, f2, flen);
            char *end;
            unsigned long long size = strtoull(digits, &end, 10);
            if (*end || size > g_size - g_pos || g_size - g_pos - size < 1
                || g_data[g_pos + size] != '\n')
                fallback("truncated");
            o->b = g_data + g_pos;
            o->blen = (size_t)size;
            g_pos += (size_t)size + 1;
            last_unit = o->a;
        } else if (line[0] == 'K') {
            o->kind = LINK;
            o->a = unhex(f1, f1len);
            o->b = unhex(f2, flen);
            /* write_units' target: NAME beside it, ../NAME one directory down */
            const char *name = strncmp(o->b, "../", 3) ? o->b : o->b + 3;
            int down = strchr(o->a, '/') != NULL;
            if (!last_unit || !safe_relative(o->a) || strcmp(name, last_unit)
                || (down != (name != o->b)))
                fallback("unsafe link");
        } else {
            fallback("corrupt");
        }
    }
    if (g_pos != g_size)
        fallback("trailing data");
    *count = n;
    return outs;
}

static int write_all(int fd, const char *data, size_t len)
{
    while (len) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static char *temp_name(const char *path)
{
    struct buf b = {0};
    const char *slash = strrchr(path, '/');
    size_t head = slash ? (size_t)(slash - path + 1) : 0;
    buf_printf(&b, "%.*s.%s.%ld.tmp", (int)head, path, path + head, (long)getpid());
    return b.data;
}

static int close_ok(int fd)
{
    return close(fd) == 0 || errno == EINTR;
}

/* generator._write: a plain create, else (a second run) a temporary file renamed over. */
static void write_file(const char *path, const char *data, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd >= 0) {
        if (write_all(fd, data, len) != 0 || !close_ok(fd))
            fallback("write");
        return;
    }
    if (errno != EEXIST)
        fallback("write");
    char *temp = temp_name(path);
    fd = open(temp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666); /* open(..., "w") */
    if (fd < 0 || write_all(fd, data, len) != 0 || !close_ok(fd) || rename(temp, path)) {
        unlink(temp);
        fallback("write");
    }
    free(temp);
}

/* generator._symlink */
static void write_link(const char *path, const char *target)
{
    if (symlink(target, path) == 0)
        return;
    if (errno != EEXIST)
        fallback("write");
    char *temp = temp_name(path);
    struct stat st;
    if (lstat(temp, &st) == 0 && unlink(temp) != 0)
        fallback("write");
    if (symlink(target, temp) != 0 || rename(temp, path) != 0)
        fallback("write");
    free(temp);
}

/* os.makedirs(PATH, exist_ok=True) */
static void make_dirs(char *path, mode_t mode)
{
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        int failed = mkdir(path, mode) != 0 && errno != EEXIST;
        *p = '/';
        if (failed)
            fallback("mkdir");
    }
    struct stat st;
    if (mkdir(path, mode) != 0 && (errno != EEXIST || stat(path, &st) || !S_ISDIR(st.st_mode)))
        fallback("mkdir");
}

static void report(const struct out *o)
{
    write_all(2, o->a, o->alen);
    if (access(KMSG, W_OK) != 0)
        return;
    int fd = open(KMSG, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0666);
    if (fd >= 0) {
        write_all(fd, o->b, o->blen);
        close(fd);
    }
}

/* The files and links first: a failed write falls back before any message is reported
 * (the Python generator reports them). */
static void write_outputs(const char *outdir, struct out *outs, size_t n)
{
    const char *unit = NULL;
    for (size_t i = 0; i < n; i++) {
        struct out *o = &outs[i];
        if (o->kind == MESSAGE)
            continue;
        char *path = join(outdir, o->a);
        if (o->kind == UNIT) {
            write_file(path, o->b, o->blen);
            unit = o->a;
        } else if (unit) {
            char *slash = strrchr(path, '/');
            if (strchr(o->a, '/')) {
                *slash = '\0';
                make_dirs(path, 0777);
                *slash = '/';
            }
            write_link(path, o->b);
        }
        free(path);
    }
    for (size_t i = 0; i < n; i++)
        if (outs[i].kind == MESSAGE)
            report(&outs[i]);
}

int main(int argc, char **argv)
{
    g_argv = argv;
    if ((argc != 2 && argc != 4) || !argv[1][0])
        fallback("arguments");
    const char *scope = scope_name();
    load(cache_path(scope));
    check_context(scope);
    check_trees();
    size_t n;
    struct out *outs = parse_outputs(&n);
    char *outdir = strdup(argv[1]);
    if (!outdir)
        fallback("memory");
    make_dirs(outdir, 0777);
    write_outputs(outdir, outs, n);
    return 0;
}

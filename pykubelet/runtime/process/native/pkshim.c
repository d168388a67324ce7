/* pkshim: the small helpers of pykubelet's process runtime (compiled on first use).
 *
 *   pkshim pause [-C CGROUP_PROCS]... [-n] [-i] [-p] [-u HOSTNAME]
 *       Pod sandbox holder: joins the pod's cgroups (-C), owns new net (-n, loopback up), IPC
 *       (-i), UTS (-u, hostname set) and PID (-p, with a child as PID 1) namespaces until
 *       SIGTERM/SIGKILL.
 *   pkshim run -s STATEDIR -l LOGPATH [-m MAXBYTES] [-k MAXFILES] [-N NSPATH]... [-P]
 *              [-t] [-i] [-o] -- ARGV...
 *       Container supervisor: joins the namespaces (-N), optionally a new PID namespace (-P),
 *       starts ARGV with pipes (or a pty with -t; stdin pipe with -i, closed after the first
 *       attach with -o), writes its output in the CRI log format with rotation, serves the
 *       stdio on STATEDIR/attach.sock, and records pid / exit status in STATEDIR/state.
 *   pkshim run ... -I SPEC
 *       The same, with the container prepared by init (below) in the shim's child itself, so
 *       "OK" is reported once the container's command is exec'd (or init failed).
 *   pkshim init SPEC
 *       Container init (run by the shim's child): cgroups, mount namespace, overlay root,
 *       /proc, /dev, /sys, bind mounts, pivot_root, capabilities, groups/gid/uid, no_new_privs, cwd,
 *       then exec of the container's command in place.
 *   pkshim enter -t PID [-C CGROUP_PROCS]... [-c CAPMASK] [-u UID -g GID -G GROUPS] [-n]
 *                [-w CWD] [-T] -- ARGV...
 *       exec into a running container: its cgroups, namespaces, root, credentials and cwd
 *       (-T: a new session with stdin, a terminal, as its controlling terminal).
 *
 *   pkshim zygote
 *       Launch server: reads requests (a pause, run or enter command line, optionally its
 *       environment, a socket for the report and, for enter, the exec's stdin, stdout and
 *       stderr) as SOCK_SEQPACKET messages on fd 0 and forks the helper for each, without an
 *       exec; exits when the agent closes the socket.
 *
 * pause and run daemonize (new session, stdio on /dev/null) so neither the agent's death nor a
 * signal to its process group reaches them; the launching process prints "OK <pid> [<child>]"
 * or "ERR <reason>" on stdout and exits once the daemon is ready. Launched by the zygote, the
 * same line goes to the request's report socket and no second fork is needed.
 * enter launched by the zygote leads a session of its own and reports on its report socket
 * (SOCK_SEQPACKET, one record each): "OK <pid>" with a pidfd of itself, then "EXIT <code>" or
 * "SIGNAL <n>" when the command ends. SIGTERM to an enter leading its process group kills the
 * whole group (the agent's race-free kill: a pidfd signal to a process that cannot be reaped
 * while it runs, whose group id therefore cannot be reused).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <grp.h>
#include <linux/capability.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <net/if.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#ifndef SYS_openat2
#define SYS_openat2 437
#endif

#define MAX_LINE 16384
#define MAX_CLIENTS 16
#define MAX_NS 8

static int ready_fd = -1;

static void report(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void report(const char *fmt, ...) {
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (ready_fd >= 0 && n > 0) {
        if (write(ready_fd, buf, (size_t)n) < 0) { /* launcher gone: nothing to tell */ }
        close(ready_fd);
        ready_fd = -1;
    }
}

static void fail(const char *what) {
    report("ERR %s: %s\n", what, strerror(errno));
    _exit(1);
}

/* Fork; the parent relays the daemon's first line and exits; the child returns in a new session. */
static void detach_stdio(void) {
    setsid();
    int dn = open("/dev/null", O_RDWR);
    if (dn >= 0) { dup2(dn, 0); dup2(dn, 1); dup2(dn, 2); if (dn > 2) close(dn); }
}

static void daemonize(void) {
    if (ready_fd >= 0) { detach_stdio(); return; }  /* forked by the zygote: already a daemon */
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) { perror("pipe"); exit(1); }
    pid_t pid = fork();
    if (pid < 0) { perror("fork"); exit(1); }
    if (pid > 0) {
        close(p[1]);
        char buf[512];
        ssize_t n, total = 0;
        /* one line: the daemon's descendants may keep the pipe open */
        while (total < (ssize_t)sizeof buf - 1 && (n = read(p[0], buf + total, 1)) > 0) {
            total += n;
            if (buf[total - 1] == '\n') break;
        }
        buf[total] = 0;
        if (total == 0) { printf("ERR helper died before it was ready\n"); exit(1); }
        fputs(buf, stdout);
        exit(strncmp(buf, "OK", 2) == 0 ? 0 : 1);
    }
    close(p[0]);
    ready_fd = p[1];
    detach_stdio();
}

/* ---------------------------------------------------------------- pause */

static pid_t pause_child = 0;
static void on_term(int sig) { (void)sig; if (pause_child > 0) kill(pause_child, SIGKILL); _exit(0); }

static int cmd_pause(int argc, char **argv) {
    int flags = 0, opt, want_pid = 0, want_lo = 0, ncg = 0;
    const char *hostname = NULL, *cgroups[MAX_NS];
    while ((opt = getopt(argc, argv, "nipu:C:")) != -1) {
        switch (opt) {
        case 'C': if (ncg < MAX_NS) cgroups[ncg++] = optarg; break;
        case 'n': flags |= CLONE_NEWNET; want_lo = 1; break;
        case 'i': flags |= CLONE_NEWIPC; break;
        case 'p': flags |= CLONE_NEWPID; want_pid = 1; break;
        case 'u': flags |= CLONE_NEWUTS; hostname = optarg; break;
        default: fprintf(stderr, "usage: pkshim pause [-C procs] [-n] [-i] [-p] [-u hostname]\n"); return 2;
        }
    }
    daemonize();
    for (int i = 0; i < ncg; i++) {  /* the pod's cgroup, joined first (best effort, as before) */
        char pid[32];
        int fd = open(cgroups[i], O_WRONLY | O_CLOEXEC);
        snprintf(pid, sizeof pid, "%d", (int)getpid());
        if (fd >= 0) { if (write(fd, pid, strlen(pid)) < 0) {} close(fd); }
    }
    if (flags && unshare(flags) < 0) fail("unshare");
    if (hostname && sethostname(hostname, strlen(hostname)) < 0) fail("sethostname");
    if (want_lo) {
        int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        struct ifreq ifr;
        memset(&ifr, 0, sizeof ifr);
        strcpy(ifr.ifr_name, "lo");
        if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) < 0) fail("loopback flags");
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0) fail("loopback up");
        close(s);
    }
    if (want_pid) {
        pause_child = fork();
        if (pause_child < 0) fail("fork");
        if (pause_child == 0) {
            close(ready_fd);
            for (;;) pause();  /* PID 1 of the pod: only SIGKILL ends it */
        }
        signal(SIGTERM, on_term);
        signal(SIGINT, on_term);
    }
    report("OK %d\n", (int)getpid());
    for (;;) {
        if (want_pid) {
            int st;
            if (waitpid(pause_child, &st, 0) == pause_child) _exit(0);
        } else {
            pause();
        }
    }
}

/* ---------------------------------------------------------------- log writer */

struct logw {
    const char *path;
    int fd;
    long long size, max_size;
    int max_files;
    time_t last_rotation; /* the stamp of this shim's last rotation */
    /* records that could not be written (disk full, I/O error): counted in STATEDIR/logloss,
     * one fixed-width line rewritten in place (no new block needed on a full disk) */
    int loss_fd;
    long long lost_records, lost_bytes;
    int last_errno;
};

static void ts_now(char *out, size_t n, struct timespec *now) {
    clock_gettime(CLOCK_REALTIME, now);
    struct tm tm;
    gmtime_r(&now->tv_sec, &tm);
    char frac[16];
    snprintf(frac, sizeof frac, "%09ld", now->tv_nsec);
    int len = 9;
    while (len > 0 && frac[len - 1] == '0') len--;
    frac[len] = 0;
    char base[32];
    strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
    if (len) snprintf(out, n, "%s.%sZ", base, frac);
    else snprintf(out, n, "%sZ", base);
}

/* The rotation a name belongs to: the name without ".gz" (the agent gzips older rotations);
 * NULL for the agent's ".tmp" files, which the agent removes itself. */
static char *rotation_key(const char *name) {
    size_t n = strlen(name);
    if (n >= 4 && strcmp(name + n - 4, ".tmp") == 0) return NULL;
    if (n >= 3 && strcmp(name + n - 3, ".gz") == 0) n -= 3;
    return strndup(name, n);
}

static int cmp_keys(const void *a, const void *b) {
    return strcmp(((char *const *)a)[0], ((char *const *)b)[0]);
}

static void log_rotate(struct logw *w) {
    close(w->fd);
    /* <log>.<YYYYMMDD-hhmmss> as upstream; a second rotation within one second takes the next
     * free second, so names stay unique and sort by age (also once gzipped) */
    char name[4096], gz[4100], stamp[32];
    time_t t = time(NULL);
    if (t <= w->last_rotation) t = w->last_rotation + 1;
    for (;; t++) {
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", &tm);
        snprintf(name, sizeof name, "%s.%s", w->path, stamp);
        snprintf(gz, sizeof gz, "%s.gz", name);
        if (access(name, F_OK) != 0 && access(gz, F_OK) != 0) break;
    }
    w->last_rotation = t;
    rename(w->path, name);
    /* keep max_files in all: the current file and max_files-1 rotations (a rotation counts
     * once, plain or gzipped or both while the agent compresses it) */
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", w->path);
    char *slash = strrchr(dir, '/');
    const char *base = w->path;
    if (slash) { *slash = 0; base = slash + 1; } else { strcpy(dir, "."); }
    size_t blen = strlen(base);
    DIR *d = opendir(dir);
    if (d) {
        char *names[1024][2]; /* key, name */
        int count = 0;
        struct dirent *e;
        while ((e = readdir(d)) && count < 1024) {
            if (strncmp(e->d_name, base, blen) != 0 || e->d_name[blen] != '.') continue;
            char *key = rotation_key(e->d_name);
            if (!key) continue;
            names[count][0] = key;
            names[count++][1] = strdup(e->d_name);
        }
        closedir(d);
        qsort(names, (size_t)count, sizeof names[0], cmp_keys);
        int rotations = 0;
        for (int i = 0; i < count; i++)
            if (i == 0 || strcmp(names[i][0], names[i - 1][0]) != 0) rotations++;
        int keep = w->max_files > 1 ? w->max_files - 1 : 0;
        int seen = 0;
        for (int i = 0; i < count; i++) {
            if (i == 0 || strcmp(names[i][0], names[i - 1][0]) != 0) seen++;
            if (seen <= rotations - keep) {
                char full[8192];
                snprintf(full, sizeof full, "%s/%s", dir, names[i][1]);
                unlink(full);
            }
            free(names[i][0]);
            free(names[i][1]);
        }
    }
    w->fd = open(w->path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0640);
    w->size = 0;
}

static void write_all(int fd, const char *p, size_t n) {
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0) { if (errno == EINTR) continue; return; }
        p += k;
        n -= (size_t)k;
    }
}

/* Write one whole record or none: a record cut by ENOSPC is truncated away (the next one must
 * not continue a half line); 0 on success, else the errno. */
static int write_record(int fd, const char *p, size_t n) {
    size_t done = 0;
    while (done < n) {
        ssize_t k = write(fd, p + done, n - done);
        if (k < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            struct stat st;
            if (done > 0 && fstat(fd, &st) == 0 && st.st_size >= (off_t)done)
                if (ftruncate(fd, st.st_size - (off_t)done) < 0) {}
            return e;
        }
        if (k == 0) return EIO;
        done += (size_t)k;
    }
    return 0;
}

static void log_loss_save(struct logw *w) {
    if (w->loss_fd < 0) return;
    char line[96];
    int n = snprintf(line, sizeof line, "%020lld %020lld %05d\n", w->lost_records, w->lost_bytes,
                     w->last_errno);
    if (pwrite(w->loss_fd, line, (size_t)n, 0) < 0) {}
}

static void log_loss(struct logw *w, int e, size_t n) {
    w->lost_records++;
    w->lost_bytes += (long long)n;
    w->last_errno = e;
    log_loss_save(w);
}

static void log_record(struct logw *w, const char *stream, int partial, const char *msg, size_t n) {
    char ts[64];
    struct timespec now;
    ts_now(ts, sizeof ts, &now);
    char head[128];
    int hl = snprintf(head, sizeof head, "%s %s %c ", ts, stream, partial ? 'P' : 'F');
    long long len = hl + (long long)n + 1;
    if (w->max_size > 0 && w->size > 0 && w->size + len > w->max_size) log_rotate(w);
    if (w->fd < 0) {  /* a rotation could not create the new file: try again now */
        w->fd = open(w->path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
        struct stat st;
        if (w->fd >= 0 && fstat(w->fd, &st) == 0) w->size = st.st_size;
    }
    char *rec = w->fd < 0 ? NULL : malloc((size_t)len);
    if (!rec) {
        log_loss(w, w->fd < 0 ? errno : ENOMEM, n);
        return;
    }
    memcpy(rec, head, (size_t)hl);
    memcpy(rec + hl, msg, n);
    rec[len - 1] = '\n';
    int e = write_record(w->fd, rec, (size_t)len);
    free(rec);
    if (e) {
        log_loss(w, e, n);
        return;
    }
    w->size += len;
}

struct linebuf {
    const char *stream;
    char buf[MAX_LINE];
    size_t len;
};

static void lb_feed(struct logw *w, struct linebuf *b, const char *p, size_t n) {
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t take = nl ? (size_t)(nl - p) : n;
        while (b->len + take > MAX_LINE) {  /* a line longer than MAX_LINE: split with P */
            size_t room = MAX_LINE - b->len;
            memcpy(b->buf + b->len, p, room);
            log_record(w, b->stream, 1, b->buf, MAX_LINE);
            b->len = 0;
            p += room; n -= room; take -= room;
        }
        memcpy(b->buf + b->len, p, take);
        b->len += take;
        p += take; n -= take;
        if (nl && n > 0 && *p == '\n') {
            log_record(w, b->stream, 0, b->buf, b->len);
            b->len = 0;
            p++; n--;
        }
    }
}

static void lb_flush(struct logw *w, struct linebuf *b) {
    if (b->len) log_record(w, b->stream, 1, b->buf, b->len);
    b->len = 0;
}

/* ---------------------------------------------------------------- run */

static int sig_pipe[2];
static void on_chld(int sig) { (void)sig; int e = errno; if (write(sig_pipe[1], "c", 1) < 0) {} errno = e; }

static const char *state_dir;

/* A process's start time in clock ticks since boot (field 22 of /proc/PID/stat): with the pid,
 * it names the process even after the pid is reused. 0 if unreadable. */
static unsigned long long proc_start(pid_t pid) {
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    char *p = strrchr(buf, ')');  /* the command may hold spaces and parentheses */
    if (!p) return 0;
    char *save = NULL;
    int field = 3;
    for (char *tok = strtok_r(p + 2, " ", &save); tok; tok = strtok_r(NULL, " ", &save), field++)
        if (field == 22) return strtoull(tok, NULL, 10);
    return 0;
}

/* Atomic (rename) but not fsync'd: the state describes a process, which a reboot ends anyway. */
static void write_state(const char *body) {
    char tmp[4096], dst[4096];
    snprintf(tmp, sizeof tmp, "%s/state.tmp", state_dir);
    snprintf(dst, sizeof dst, "%s/state", state_dir);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return;
    write_all(fd, body, strlen(body));
    close(fd);
    rename(tmp, dst);
}

struct client { int fd; char in[65536 + 5]; size_t inlen; };

/* Output to an attach client never blocks the shim: a client that cannot take a frame at once
 * (its socket buffer is full) is disconnected rather than allowed to stall the container. */
static void send_frame(struct client *c, int stream, const char *p, size_t n) {
    if (c->fd < 0) return;
    char *frame = malloc(n + 5);
    if (!frame) return;
    frame[0] = (char)stream;
    frame[1] = (char)(n >> 24); frame[2] = (char)(n >> 16); frame[3] = (char)(n >> 8);
    frame[4] = (char)n;
    memcpy(frame + 5, p, n);
    ssize_t k = send(c->fd, frame, n + 5, MSG_DONTWAIT | MSG_NOSIGNAL);
    free(frame);
    if (k != (ssize_t)(n + 5)) { close(c->fd); c->fd = -1; }
}

static long long now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

static int cmd_init(int argc, char **argv);

/* A container with a terminal (run -t with -I): init makes the terminal inside the container,
 * from its own devpts (so ttyname() finds /dev/pts/N there, as with runc), and hands the
 * master to the shim over this socket. -1 otherwise. */
static int tty_sock = -1;

/* one message of ``len`` bytes with ``fd`` attached (SCM_RIGHTS); -1 if it could not go */
static int send_with_fd(int sock, const char *data, size_t len, int fd, int flags) {
    char cbuf[CMSG_SPACE(sizeof(int))];
    memset(cbuf, 0, sizeof cbuf);
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                         .msg_controllen = sizeof cbuf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof fd);
    ssize_t r;
    while ((r = sendmsg(sock, &msg, flags)) < 0 && errno == EINTR) {}
    return r < 0 ? -1 : 0;
}

static void send_fd(int sock, int fd) {
    send_with_fd(sock, "m", 1, fd, 0);
}

static int recv_fd(int sock) {
    char byte, cbuf[CMSG_SPACE(sizeof(int))];
    struct iovec iov = {.iov_base = &byte, .iov_len = 1};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                         .msg_controllen = sizeof cbuf};
    ssize_t n;
    while ((n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC)) < 0 && errno == EINTR) {}
    struct cmsghdr *c = n > 0 ? CMSG_FIRSTHDR(&msg) : NULL;
    int fd = -1;
    if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
        memcpy(&fd, CMSG_DATA(c), sizeof fd);
    return fd;
}

static int cmd_run(int argc, char **argv) {
    const char *log_path = NULL;
    const char *ns_paths[MAX_NS];
    const char *init_spec = NULL;
    int nns = 0, opt, newpid = 0, tty = 0, want_stdin = 0, stdin_once = 0;
    long long max_size = 10 * 1024 * 1024;
    int max_files = 5;
    while ((opt = getopt(argc, argv, "+s:l:m:k:N:PtioI:")) != -1) {
        switch (opt) {
        case 's': state_dir = optarg; break;
        case 'I': init_spec = optarg; break;
        case 'l': log_path = optarg; break;
        case 'm': max_size = atoll(optarg); break;
        case 'k': max_files = atoi(optarg); break;
        case 'N': if (nns < MAX_NS) ns_paths[nns++] = optarg; break;
        case 'P': newpid = 1; break;
        case 't': tty = 1; break;
        case 'i': want_stdin = 1; break;
        case 'o': stdin_once = 1; break;
        default: fprintf(stderr, "usage: pkshim run -s DIR -l LOG [...] -- ARGV\n"); return 2;
        }
    }
    if (!state_dir || !log_path || (optind >= argc && !init_spec)) {
        fprintf(stderr, "pkshim run: -s, -l and a command (or -I SPEC) are required\n");
        return 2;
    }
    char **cargv = argv + optind;
    daemonize();

    struct logw w = {.path = log_path, .max_size = max_size, .max_files = max_files};
    w.fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (w.fd < 0) fail("open log");
    struct stat st;
    if (fstat(w.fd, &st) == 0) w.size = st.st_size;
    char loss_path[4096];
    snprintf(loss_path, sizeof loss_path, "%s/logloss", state_dir);
    w.loss_fd = open(loss_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    log_loss_save(&w);  /* allocates the line's block now, while there is space */

    /* bind relative to the state dir: absolute paths can exceed sun_path's 108 bytes */
    if (chdir(state_dir) < 0) fail("chdir state dir");
    const char *sock_path = "attach.sock";
    unlink(sock_path);
    int lsock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(sock_path) >= sizeof sa.sun_path) { errno = ENAMETOOLONG; fail("attach socket"); }
    strcpy(sa.sun_path, sock_path);
    if (lsock < 0 || bind(lsock, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(lsock, 8) < 0)
        fail("attach socket");
    chmod(sock_path, 0600);

    int out[2] = {-1, -1}, err[2] = {-1, -1}, in[2] = {-1, -1}, master = -1;
    int tty_pair[2] = {-1, -1};
    char slave_name[128] = "";
    if (tty && init_spec) {
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, tty_pair) < 0) fail("socketpair");
    } else if (tty) {
        master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (master < 0 || grantpt(master) < 0 || unlockpt(master) < 0) fail("pty");
        if (ptsname_r(master, slave_name, sizeof slave_name) != 0) fail("ptsname");
    } else {
        if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) fail("pipe");
        if (want_stdin && pipe2(in, O_CLOEXEC) < 0) fail("pipe");
    }
    for (int i = 0; i < nns; i++) {
        int fd = open(ns_paths[i], O_RDONLY | O_CLOEXEC);
        if (fd < 0 || setns(fd, 0) < 0) fail(ns_paths[i]);
        close(fd);
    }
    if (newpid && unshare(CLONE_NEWPID) < 0) fail("unshare pid");
    if (pipe2(sig_pipe, O_CLOEXEC | O_NONBLOCK) < 0) fail("pipe");
    struct sigaction sa_chld = {.sa_handler = on_chld, .sa_flags = SA_NOCLDSTOP | SA_RESTART};
    sigaction(SIGCHLD, &sa_chld, NULL);
    signal(SIGPIPE, SIG_IGN);
    int exec_pipe[2];
    if (pipe2(exec_pipe, O_CLOEXEC) < 0) fail("pipe");

    long long started = now_ns();
    pid_t child = fork();
    if (child < 0) fail("fork");
    if (child == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGCHLD, SIG_DFL);
        signal(SIGPIPE, SIG_DFL);
        setsid();
        if (tty && init_spec) {
            tty_sock = tty_pair[1];  /* init makes the terminal inside the container */
        } else if (tty) {
            int s = open(slave_name, O_RDWR);
            if (s < 0) _exit(127);
            ioctl(s, TIOCSCTTY, 0);
            dup2(s, 0); dup2(s, 1); dup2(s, 2);
            if (s > 2) close(s);
        } else {
            if (in[0] >= 0) dup2(in[0], 0);
            dup2(out[1], 1);
            dup2(err[1], 2);
        }
        if (init_spec) {
            /* init execs the command, closing exec_pipe (CLOEXEC): the shim's read returns */
            char *iargv[] = {"init", (char *)init_spec, NULL};
            _exit(cmd_init(2, iargv));
        }
        execvp(cargv[0], cargv);
        int e = errno;
        if (write(exec_pipe[1], &e, sizeof e) < 0) {}
        _exit(127);
    }
    close(exec_pipe[1]);
    if (tty && init_spec) {
        close(tty_pair[1]);
        master = recv_fd(tty_pair[0]);  /* -1 when init failed before: reported below */
        close(tty_pair[0]);
    }
    int exec_errno = 0;
    if (read(exec_pipe[0], &exec_errno, sizeof exec_errno) != sizeof exec_errno) exec_errno = 0;
    close(exec_pipe[0]);
    if (!tty) { close(out[1]); close(err[1]); if (in[0] >= 0) close(in[0]); }
    int in_fd = tty ? master : in[1];
    /* stdin from attach clients waits here until the container reads it (back-pressure: while
     * anything is pending, clients are not read) */
    static char pend[MAX_CLIENTS * (65536 + 5)];  /* every client's buffer fits: nothing is dropped */
    size_t pend_len = 0;
    int close_in_when_drained = 0;
    if (in_fd >= 0) fcntl(in_fd, F_SETFL, fcntl(in_fd, F_GETFL) | O_NONBLOCK);

    char body[1024];
    /* the identities (pid + start time) the agent checks liveness with */
    unsigned long long child_start = proc_start(child), shim_start = proc_start(getpid());
    snprintf(body, sizeof body, "pid=%d\nshim_pid=%d\nstarted_ns=%lld\npid_start=%llu\nshim_start=%llu\n",
             (int)child, (int)getpid(), started, child_start, shim_start);
    write_state(body);
    if (exec_errno) {
        char msg[512];
        int n = snprintf(msg, sizeof msg, "exec %s: %s", init_spec ? "init" : cargv[0],
                         strerror(exec_errno));
        log_record(&w, "stderr", 0, msg, (size_t)n);
    }
    report("OK %d %d\n", (int)getpid(), (int)child);

    struct linebuf lout = {.stream = "stdout"}, lerr = {.stream = "stderr"};
    struct client clients[MAX_CLIENTS];
    int nclients = 0, exited = 0, status = 0;
    int rfd_out = tty ? master : out[0], rfd_err = tty ? -1 : err[0];
    long long finished = 0;
    static char buf[65536];

    while (rfd_out >= 0 || rfd_err >= 0 || !exited) {
        struct pollfd pf[5 + MAX_CLIENTS];
        int n = 0;
        for (int i = 0; i < nclients;) {  /* drop clients disconnected since the last poll */
            if (clients[i].fd < 0) {
                clients[i] = clients[--nclients];
                if (stdin_once && in_fd >= 0 && !tty) close_in_when_drained = 1;
            } else {
                i++;
            }
        }
        if (close_in_when_drained && pend_len == 0 && in_fd >= 0) {
            close(in_fd);
            in_fd = -1;
            close_in_when_drained = 0;
        }
        pf[n++] = (struct pollfd){.fd = sig_pipe[0], .events = POLLIN};
        pf[n++] = (struct pollfd){.fd = rfd_out, .events = POLLIN};
        pf[n++] = (struct pollfd){.fd = rfd_err, .events = POLLIN};
        pf[n++] = (struct pollfd){.fd = lsock, .events = POLLIN};
        pf[n++] = (struct pollfd){.fd = pend_len && in_fd >= 0 ? in_fd : -1, .events = POLLOUT};
        for (int i = 0; i < nclients; i++)
            pf[n++] = (struct pollfd){.fd = pend_len ? -1 : clients[i].fd, .events = POLLIN};
        /* once the main process is gone, descendants holding the pipes get a short grace */
        int r = poll(pf, (nfds_t)n, exited ? 200 : -1);
        if (r < 0) { if (errno == EINTR) continue; break; }
        if (r == 0 && exited) break;
        if (pf[0].revents) {
            char c[64];
            while (read(sig_pipe[0], c, sizeof c) > 0) {}
            int s;
            pid_t p;
            while ((p = waitpid(-1, &s, WNOHANG)) > 0)
                if (p == child) { exited = 1; status = s; finished = now_ns(); }
        }
        for (int k = 1; k <= 2; k++) {
            int fd = k == 1 ? rfd_out : rfd_err;
            if (fd < 0 || !(pf[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t got = read(fd, buf, sizeof buf);
            if (got > 0) {
                lb_feed(&w, k == 1 ? &lout : &lerr, buf, (size_t)got);
                for (int i = 0; i < nclients; i++) send_frame(&clients[i], k, buf, (size_t)got);
            } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
                lb_flush(&w, k == 1 ? &lout : &lerr);
                if (k == 1) rfd_out = -1; else rfd_err = -1;
                if (!tty) close(fd);
            }
        }
        if (pf[3].revents & POLLIN) {
            int c = accept4(lsock, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
            if (c >= 0 && nclients < MAX_CLIENTS) {
                clients[nclients].fd = c;
                clients[nclients].inlen = 0;
                nclients++;
            } else if (c >= 0) {
                close(c);
            }
        }
        if (pf[4].revents && pend_len && in_fd >= 0) {
            ssize_t k = write(in_fd, pend, pend_len);
            if (k > 0) {
                memmove(pend, pend + k, pend_len - (size_t)k);
                pend_len -= (size_t)k;
            } else if (k < 0 && errno != EAGAIN && errno != EINTR) {
                pend_len = 0;  /* the container closed its stdin */
            }
        }
        for (int i = 5; i < n; i++) {
            if (!pf[i].revents) continue;
            struct client *c = &clients[i - 5];
            if (c->fd < 0) continue;
            ssize_t got = read(c->fd, c->in + c->inlen, sizeof c->in - c->inlen);
            if (got < 0 && (errno == EAGAIN || errno == EINTR)) continue;
            int closed = got <= 0;
            if (got > 0) c->inlen += (size_t)got;
            /* frames: type(1) len(4 BE) payload; 0 stdin data, 1 stdin close, 2 resize(cols,rows) */
            while (c->inlen >= 5) {
                size_t len = ((size_t)(unsigned char)c->in[1] << 24) |
                             ((size_t)(unsigned char)c->in[2] << 16) |
                             ((size_t)(unsigned char)c->in[3] << 8) | (unsigned char)c->in[4];
                if (len > 65536) { closed = 1; break; }
                if (c->inlen < 5 + len) break;
                char type = c->in[0];
                if (type == 0 && in_fd >= 0 && pend_len + len <= sizeof pend) {
                    memcpy(pend + pend_len, c->in + 5, len);
                    pend_len += len;
                }
                else if (type == 1 && in_fd >= 0 && !tty) close_in_when_drained = 1;
                else if (type == 2 && tty && len == 4) {
                    struct winsize ws = {0};
                    ws.ws_col = (unsigned short)(((unsigned char)c->in[5] << 8) | (unsigned char)c->in[6]);
                    ws.ws_row = (unsigned short)(((unsigned char)c->in[7] << 8) | (unsigned char)c->in[8]);
                    ioctl(master, TIOCSWINSZ, &ws);
                }
                memmove(c->in, c->in + 5 + len, c->inlen - 5 - len);
                c->inlen -= 5 + len;
            }
            if (closed) {
                close(c->fd);
                c->fd = -1;  /* removed (and stdin_once honoured) at the top of the loop */
            }
        }
    }
    lb_flush(&w, &lout);
    lb_flush(&w, &lerr);
    if (!exited) { waitpid(child, &status, 0); finished = now_ns(); }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    snprintf(body, sizeof body,
             "pid=%d\nshim_pid=%d\nstarted_ns=%lld\npid_start=%llu\nshim_start=%llu\n"
             "exit_code=%d\nsignal=%d\nfinished_ns=%lld\nexec_errno=%d\n",
             (int)child, (int)getpid(), started, child_start, shim_start, code, WIFSIGNALED(status) ? WTERMSIG(status) : 0,
             finished, exec_errno);
    write_state(body);
    unlink(sock_path);
    return 0;
}


/* ---------------------------------------------------------------- init */
/* Container init: the shim's child execs "pkshim init SPEC"; this prepares the container and
 * execs its command in place. SPEC has one directive per line, fields separated by tabs, with
 * \\ \t \n escaped (written by create.py). Same steps as init.py, without Python's start-up. */


static int exit_fd = -1;  /* enter launched by the zygote: where its end is reported */
static void report_exit(const char *kind, int code);

static void die(const char *what, const char *arg) {
    fprintf(stderr, "pykubelet: cannot start container: %s %s: %s\n", what, arg ? arg : "",
            strerror(errno));
    int code = errno == EACCES ? 126 : 127;
    report_exit("EXIT", code);
    _exit(code);
}

static void unescape(char *s) {
    char *o = s;
    for (; *s; s++) {
        if (*s == '\\' && s[1]) {
            s++;
            *o++ = *s == 'n' ? '\n' : *s == 't' ? '\t' : *s;
        } else {
            *o++ = *s;
        }
    }
    *o = 0;
}

static void mkdir_p(const char *path, mode_t mode) {
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *p = buf + 1; *p; p++) {
        if (*p == '/') { *p = 0; mkdir(buf, mode); *p = '/'; }
    }
    mkdir(buf, mode);
}

static void bind_mount(const char *src, const char *dst, int ro) {
    struct stat st;
    if (stat(src, &st) < 0) die("mount source", src);
    if (S_ISDIR(st.st_mode)) {
        mkdir_p(dst, 0755);
    } else {
        char parent[4096];
        snprintf(parent, sizeof parent, "%s", dst);
        char *slash = strrchr(parent, '/');
        if (slash) { *slash = 0; mkdir_p(parent, 0755); }
        int fd = open(dst, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
        if (fd >= 0) close(fd);
    }
    if (mount(src, dst, NULL, MS_BIND | MS_REC, NULL) < 0) die("bind mount", dst);
    if (ro && mount(NULL, dst, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
        die("read-only remount", dst);
}

/* Paths inside the container root are resolved with openat2(RESOLVE_IN_ROOT): a symlink in
 * the image (absolute or with ..) stays inside the root, as it will after pivot_root, instead
 * of reaching the host's files. Missing directories are created one component at a time under
 * a parent already resolved in the root; the result is an O_PATH fd whose /proc/self/fd path
 * is what gets mounted on. */
static int root_fd = -1;

static int open_in_root(const char *rel, int flags) {
    struct open_how how;
    memset(&how, 0, sizeof how);
    how.flags = (unsigned long long)(flags | O_CLOEXEC);
    how.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS;
    while (*rel == '/') rel++;
    return (int)syscall(SYS_openat2, root_fd, *rel ? rel : ".", &how, sizeof how);
}

/* Resolve (creating what is missing: directories, and the last component as a directory
 * or an empty file) and return an O_PATH fd; dies rather than leave the root. A dangling
 * symlink on the way is followed inside the root (its target is created there), as runc's
 * securejoin.MkdirAll does; at most 40 of them. */
static int make_in_root_n(const char *rel, int last_is_dir, int links);

static int make_in_root(const char *rel, int last_is_dir) {
    return make_in_root_n(rel, last_is_dir, 0);
}

static int make_in_root_n(const char *rel, int last_is_dir, int links) {
    int fd = open_in_root(rel, O_PATH);
    if (fd >= 0) return fd;
    if (errno != ENOENT) die("resolve in root", rel);
    char buf[4096];
    snprintf(buf, sizeof buf, "%s", rel);
    char *p = buf;
    while (*p == '/') p++;
    for (;;) {
        char *slash = strchr(p, '/');
        if (slash) *slash = 0;
        int have = open_in_root(buf, O_PATH);
        if (have >= 0) {
            close(have);
        } else if (errno == ENOENT) {
            char *name = strrchr(buf, '/');
            int parent;
            if (name) {
                *name = 0;
                parent = open_in_root(buf, O_PATH | O_DIRECTORY);
                *name = '/';
                name++;
            } else {
                parent = open_in_root("", O_PATH | O_DIRECTORY);
                name = buf;
            }
            if (parent < 0) die("resolve in root", buf);
            char target[4096];
            ssize_t tn = readlinkat(parent, name, target, sizeof target - 1);
            if (tn >= 0) {  /* a dangling symlink: go where it points, inside the root */
                target[tn] = 0;
                close(parent);
                if (links >= 40) { errno = ELOOP; die("resolve in root", rel); }
                char next[8192];
                const char *rest = slash ? slash + 1 : "";
                if (target[0] == '/')
                    snprintf(next, sizeof next, "%s/%s", target, rest);
                else if (name != buf)
                    snprintf(next, sizeof next, "%.*s/%s/%s", (int)(name - 1 - buf), buf, target, rest);
                else
                    snprintf(next, sizeof next, "%s/%s", target, rest);
                return make_in_root_n(next, last_is_dir, links + 1);
            }
            if (slash || last_is_dir) {
                if (mkdirat(parent, name, 0755) < 0 && errno != EEXIST) die("mkdir in root", buf);
            } else {
                int f = openat(parent, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
                if (f < 0) die("create in root", buf);
                close(f);
            }
            close(parent);
        } else {
            die("resolve in root", buf);
        }
        if (!slash) break;
        *slash = '/';
        p = slash + 1;
    }
    fd = open_in_root(rel, O_PATH);
    if (fd < 0) die("resolve in root", rel);
    return fd;
}

/* Bind-mount host path `src` on `rel` inside the root. */
static void bind_in_root(const char *src, const char *rel, int ro) {
    struct stat st;
    char path[64];
    if (stat(src, &st) < 0) die("mount source", src);
    int fd = make_in_root(rel, S_ISDIR(st.st_mode));
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    if (mount(src, path, NULL, MS_BIND | MS_REC, NULL) < 0) die("bind mount", rel);
    close(fd);
    if (ro) {
        fd = open_in_root(rel, O_PATH);  /* the new mount, not the directory under it */
        if (fd < 0) die("resolve in root", rel);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        if (mount(NULL, path, NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
            die("read-only remount", rel);
        close(fd);
    }
}

/* Mount a fresh filesystem on `rel` inside the root. */
static int mount_in_root(const char *rel, const char *source, const char *fstype,
                         unsigned long flags, const char *data) {
    char path[64];
    int fd = make_in_root(rel, 1);
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    int rc = mount(source, path, fstype, flags, data);
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

static void setup_dev(void) {
    char dev[64], p[4096];
    if (mount_in_root("dev", "tmpfs", "tmpfs", MS_NOSUID, "mode=755,size=65536k") < 0)
        die("mount", "/dev");
    int devfd = open_in_root("dev", O_PATH | O_DIRECTORY);  /* our tmpfs: no image symlinks */
    if (devfd < 0) die("resolve in root", "/dev");
    snprintf(dev, sizeof dev, "/proc/self/fd/%d", devfd);
    const char *nodes[] = {"null", "zero", "full", "random", "urandom", "tty"};
    for (size_t i = 0; i < sizeof nodes / sizeof nodes[0]; i++) {
        char src[64];
        struct stat st;
        snprintf(src, sizeof src, "/dev/%s", nodes[i]);
        if (stat(src, &st) < 0 || !S_ISCHR(st.st_mode)) continue;
        snprintf(p, sizeof p, "%s/%s", dev, nodes[i]);
        bind_mount(src, p, 0);
    }
    snprintf(p, sizeof p, "%s/shm", dev);
    mkdir(p, 01777);
    if (mount("shm", p, "tmpfs", MS_NOSUID | MS_NODEV, "mode=1777,size=65536k") < 0)
        die("mount", p);
    snprintf(p, sizeof p, "%s/pts", dev);
    mkdir(p, 0755);
    /* the container's own devpts instance (as runc): a terminal made from its ptmx is named
     * /dev/pts/N inside the container, so ttyname(), tty and job control work there */
    if (mount("devpts", p, "devpts", MS_NOSUID | MS_NOEXEC,
              "newinstance,ptmxmode=0666,mode=0620,gid=5") < 0)
        die("mount", p);
    const char *links[][2] = {{"fd", "/proc/self/fd"}, {"stdin", "/proc/self/fd/0"},
                              {"stdout", "/proc/self/fd/1"}, {"stderr", "/proc/self/fd/2"},
                              {"ptmx", "pts/ptmx"}};
    for (size_t i = 0; i < 5; i++) {
        snprintf(p, sizeof p, "%s/%s", dev, links[i][0]);
        if (symlink(links[i][1], p) < 0) die("symlink", p);
    }
    close(devfd);
}

static int cmd_init(int argc, char **argv) {
    if (argc < 2) { fprintf(stderr, "usage: pkshim init SPEC\n"); return 2; }
    FILE *f = fopen(argv[1], "re");
    if (!f) die("open spec", argv[1]);
    char *cargv[4096];
    int cargc = 0, mountns = 0, want_proc = 0, ro_root = 0, nnp = 0, have_caps = 0;
    int have_uid = 0, have_gid = 0, have_groups = 0;
    uid_t uid = 0; gid_t gid = 0;
    gid_t groups[256]; int ngroups = 0;
    unsigned long long caps = 0;
    char *rootfs[4] = {0}, *cwd = NULL, *sysfs = NULL;
    char *mounts[256][3]; int nmounts = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n') line[n - 1] = 0;
        char *fields[6] = {0};
        int nf = 0;
        char *save = NULL;
        for (char *tok = strtok_r(line, "\t", &save); tok && nf < 6; tok = strtok_r(NULL, "\t", &save)) {
            unescape(tok);
            fields[nf++] = strdup(tok);
        }
        if (nf == 0) continue;
        const char *k = fields[0];
        if (!strcmp(k, "cgroup") && nf == 2) {
            int fd = open(fields[1], O_WRONLY | O_CLOEXEC);
            char pid[32];
            snprintf(pid, sizeof pid, "%d", (int)getpid());
            if (fd < 0 || write(fd, pid, strlen(pid)) < 0) die("join cgroup", fields[1]);
            close(fd);
        } else if (!strcmp(k, "mountns")) mountns = 1;
        else if (!strcmp(k, "proc")) want_proc = 1;
        else if (!strcmp(k, "sysfs") && nf == 2) sysfs = fields[1];
        else if (!strcmp(k, "rootfs") && nf == 5) { for (int i = 0; i < 4; i++) rootfs[i] = fields[i + 1]; }
        else if (!strcmp(k, "mount") && nf == 4 && nmounts < 256) {
            mounts[nmounts][0] = fields[1]; mounts[nmounts][1] = fields[2]; mounts[nmounts][2] = fields[3];
            nmounts++;
        }
        else if (!strcmp(k, "readonly_rootfs")) ro_root = 1;
        else if (!strcmp(k, "nnp")) nnp = 1;
        else if (!strcmp(k, "caps") && nf == 2) { have_caps = 1; caps = strtoull(fields[1], NULL, 16); }
        else if (!strcmp(k, "uid") && nf == 2) { have_uid = 1; uid = (uid_t)strtoul(fields[1], NULL, 10); }
        else if (!strcmp(k, "gid") && nf == 2) { have_gid = 1; gid = (gid_t)strtoul(fields[1], NULL, 10); }
        else if (!strcmp(k, "groups")) {
            have_groups = 1;
            for (int i = 1; i < nf; i++) {
                char *s2 = NULL;
                for (char *g = strtok_r(fields[i], ",", &s2); g && ngroups < 256; g = strtok_r(NULL, ",", &s2))
                    groups[ngroups++] = (gid_t)strtoul(g, NULL, 10);
            }
        }
        else if (!strcmp(k, "cwd") && nf == 2) cwd = fields[1];
        else if (!strcmp(k, "arg") && cargc < 4095) cargv[cargc++] = nf == 2 ? fields[1] : strdup("");
    }
    fclose(f);
    cargv[cargc] = NULL;
    if (cargc == 0) { errno = EINVAL; die("spec", "has no command"); }

    const char *target = "/";
    if (mountns) {
        if (unshare(CLONE_NEWNS) < 0) die("unshare", "mount namespace");
        if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) < 0) die("make private", "/");
        if (rootfs[0]) {
            char opts[16384];
            snprintf(opts, sizeof opts, "lowerdir=%s,upperdir=%s,workdir=%s", rootfs[0], rootfs[1],
                     rootfs[2]);
            if (mount("overlay", rootfs[3], "overlay", 0, opts) < 0) die("mount overlay", rootfs[3]);
            target = rootfs[3];
        }
        root_fd = open(target, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0) die("open root", target);
        if (rootfs[0] || want_proc) {
            if (rootfs[0]) {
                if (mount_in_root("proc", "proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                    die("mount", "/proc");
            } else if (mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0) {
                die("mount", "/proc");
            }
        }
        if (rootfs[0]) setup_dev();
        if (rootfs[0] && sysfs) {
            /* as runc: sysfs, read-only unless privileged; a bind of the host's if refused */
            unsigned long ro = strcmp(sysfs, "rw") ? MS_RDONLY : 0;
            if (mount_in_root("sys", "sysfs", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC | ro, NULL) < 0)
                bind_in_root("/sys", "sys", ro != 0);
        }
        for (int i = 0; i < nmounts; i++)
            bind_in_root(mounts[i][1], mounts[i][2], mounts[i][0][0] == '1');
        close(root_fd);
        root_fd = -1;
        if (rootfs[0]) {
            if (chdir(target) < 0) die("chdir", target);
            if (syscall(SYS_pivot_root, ".", ".") < 0) die("pivot_root", target);
            if (umount2(".", MNT_DETACH) < 0) die("umount", "old root");
            if (chdir("/") < 0) die("chdir", "/");
            if (ro_root && mount(NULL, "/", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL) < 0)
                die("read-only remount", "/");
        }
    }
    if (tty_sock >= 0) {
        /* the container's devpts when it has one (an image), else the host's */
        const char *ptmx = access("/dev/pts/ptmx", F_OK) == 0 ? "/dev/pts/ptmx" : "/dev/ptmx";
        int m = open(ptmx, O_RDWR | O_NOCTTY | O_CLOEXEC), unlock = 0;
        if (m < 0 || ioctl(m, TIOCSPTLCK, &unlock) < 0) die("open terminal", ptmx);
        int t = ioctl(m, TIOCGPTPEER, O_RDWR | O_NOCTTY);
        if (t < 0 || ioctl(t, TIOCSCTTY, 0) < 0) die("terminal slave", ptmx);
        dup2(t, 0); dup2(t, 1); dup2(t, 2);
        if (t > 2) close(t);
        send_fd(tty_sock, m);
        close(m);
        close(tty_sock);
        tty_sock = -1;
    }
    if (have_caps) {
        for (int c = 0; c <= 63; c++)
            if (!(caps & (1ULL << c))) prctl(PR_CAPBSET_DROP, c, 0, 0, 0);
    }
    if (geteuid() == 0) {
        if ((have_groups || have_gid) && setgroups((size_t)ngroups, groups) < 0) die("setgroups", "");
        if (have_gid && setgid(gid) < 0) die("setgid", "");
        if (have_uid && setuid(uid) < 0) die("setuid", "");
    }
    if (have_caps && (!have_uid || uid == 0)) {
        struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct d[2];
        for (int i = 0; i < 2; i++) {
            d[i].effective = d[i].permitted = d[i].inheritable = (uint32_t)(caps >> (32 * i));
        }
        if (syscall(SYS_capset, &h, d) < 0) die("capset", "");
    }
    if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) die("no_new_privs", "");
    if (cwd) {
        if (rootfs[0]) mkdir_p(cwd, 0755);
        if (chdir(cwd) < 0) die("chdir", cwd);
    }
    execvp(cargv[0], cargv);
    die("exec", cargv[0]);
    return 127;
}

/* ---------------------------------------------------------------- enter */
/* exec into a running container: join its cgroups, then its ipc/uts/net/pid/mnt namespaces
 * (mount last: it moves us into the container's root), fork into its PID namespace, and apply
 * what init applied: capabilities, groups/gid/uid, no_new_privs, the working directory.
 *
 * Joining cgroups is most of an exec's wall time when done by writing a pid to cgroup.procs:
 * each such write takes the kernel's global threadgroup lock for writing, which waits for an RCU
 * grace period. So on a v1 hierarchy we write "0" (this very thread) to "tasks", which skips
 * that lock (we are single-threaded, so the thread is the process); on the v2 one the command
 * is cloned straight into the cgroup (clone3 CLONE_INTO_CGROUP), falling back to a
 * cgroup.procs write where the kernel lacks it. */

static void join_cgroup(const char *procs, int *cg2) {
    char dir[4096], path[4200];
    size_t n = strlen(procs);
    const char *base = "/cgroup.procs";
    if (n < strlen(base) || strcmp(procs + n - strlen(base), base) != 0 || n - strlen(base) >= sizeof dir)
        die("cgroup file (expected .../cgroup.procs)", procs);
    memcpy(dir, procs, n - strlen(base));
    dir[n - strlen(base)] = 0;
    snprintf(path, sizeof path, "%s/tasks", dir);
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {  /* cgroup v1 */
        if (write(fd, "0", 1) < 0) die("join cgroup", path);
        close(fd);
        return;
    }
    if (errno != ENOENT) die("join cgroup", path);
    if (*cg2 >= 0) close(*cg2);
    *cg2 = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (*cg2 < 0) die("join cgroup", dir);
}

#ifndef CLONE_INTO_CGROUP
#define CLONE_INTO_CGROUP 0x200000000ULL
#endif
struct pk_clone_args {
    uint64_t flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls,
        set_tid, set_tid_size, cgroup;
};

/* fork, the child starting in the v2 cgroup ``cg2`` (an open directory) when there is one */
static pid_t fork_into(int cg2) {
    if (cg2 < 0) return fork();
#ifdef SYS_clone3
    struct pk_clone_args a;
    memset(&a, 0, sizeof a);
    a.flags = CLONE_INTO_CGROUP;
    a.exit_signal = SIGCHLD;
    a.cgroup = (uint64_t)cg2;
    long r = syscall(SYS_clone3, &a, sizeof a);
    if (r >= 0) return (pid_t)r;
    if (errno != ENOSYS && errno != E2BIG && errno != EINVAL) return -1;
#endif
    int fd = openat(cg2, "cgroup.procs", O_WRONLY | O_CLOEXEC);
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    if (fd < 0 || write(fd, pid, strlen(pid)) < 0) die("join cgroup", "cgroup.procs");
    close(fd);
    return fork();
}

/* the end of an exec launched by the zygote, told once on its report socket */
static void report_exit(const char *kind, int code) {
    if (exit_fd < 0) return;
    char line[64];
    int n = snprintf(line, sizeof line, "%s %d\n", kind, code);
    if (write(exit_fd, line, (size_t)n) < 0) { /* the agent is gone: nothing to tell */ }
    close(exit_fd);
    exit_fd = -1;
}

/* SIGTERM to an enter that leads its process group: the exec is killed, command and all */
static void on_kill(int sig) { (void)sig; kill(0, SIGKILL); }

static int cmd_enter(int argc, char **argv) {
    int opt, have_caps = 0, have_uid = 0, nnp = 0, ngroups = 0;
    pid_t target = 0;
    unsigned long long caps = 0;
    uid_t uid = 0;
    gid_t gid = 0, groups[256];
    const char *cwd = "/";
    int ctty = 0, cg2 = -1;
    /* none of the agent's or the zygote's fds may reach the container: the agent's are
     * close-on-exec, this closes them all anyway; only the report socket (fd 3 when launched
     * by the zygote, close-on-exec) stays */
    close_range(exit_fd == 3 ? 4 : 3, ~0U, 0);
    if (getpgrp() == getpid()) signal(SIGTERM, on_kill);  /* never a group we do not lead */
    while ((opt = getopt(argc, argv, "+t:c:u:g:G:nw:C:T")) != -1) {
        switch (opt) {
        case 't': target = (pid_t)atoi(optarg); break;
        case 'T': ctty = 1; break;
        case 'c': have_caps = 1; caps = strtoull(optarg, NULL, 16); break;
        case 'u': have_uid = 1; uid = (uid_t)strtoul(optarg, NULL, 10); break;
        case 'g': gid = (gid_t)strtoul(optarg, NULL, 10); break;
        case 'G': {
            char *save = NULL;
            for (char *g = strtok_r(optarg, ",", &save); g && ngroups < 256; g = strtok_r(NULL, ",", &save))
                groups[ngroups++] = (gid_t)strtoul(g, NULL, 10);
            break;
        }
        case 'n': nnp = 1; break;
        case 'w': cwd = optarg; break;
        case 'C': join_cgroup(optarg, &cg2); break;
        default: fprintf(stderr, "usage: pkshim enter -t PID [...] -- ARGV\n"); return 2;
        }
    }
    if (target <= 0 || optind >= argc) { fprintf(stderr, "pkshim enter: -t and a command are required\n"); return 2; }
    /* one setns through a pidfd joins all five at once, atomically (Linux 5.8); joining one
     * we are in already is harmless. Else (an older kernel) one file per namespace. */
    int pfd = (int)syscall(SYS_pidfd_open, target, 0);
    int joined = pfd >= 0 &&
                 setns(pfd, CLONE_NEWIPC | CLONE_NEWUTS | CLONE_NEWNET | CLONE_NEWPID | CLONE_NEWNS) == 0;
    if (pfd >= 0) close(pfd);
    const char *kinds[] = {"ipc", "uts", "net", "pid", "mnt"};
    int fds[5];
    for (int i = 0; i < 5 && !joined; i++) {
        char mine[64], theirs[64];
        struct stat a, b;
        snprintf(mine, sizeof mine, "/proc/self/ns/%s", kinds[i]);
        snprintf(theirs, sizeof theirs, "/proc/%d/ns/%s", (int)target, kinds[i]);
        fds[i] = -1;
        if (stat(theirs, &b) < 0) die("container namespace", theirs);
        if (stat(mine, &a) == 0 && a.st_ino == b.st_ino && a.st_dev == b.st_dev) continue;
        fds[i] = open(theirs, O_RDONLY | O_CLOEXEC);
        if (fds[i] < 0) die("open", theirs);
    }
    for (int i = 0; i < 5 && !joined; i++)
        if (fds[i] >= 0 && setns(fds[i], 0) < 0) die("setns", kinds[i]);
    pid_t child = fork_into(cg2);
    if (child < 0) die("fork", "");
    if (child > 0) {
        int st;
        signal(SIGINT, SIG_IGN);
        while (waitpid(child, &st, 0) < 0 && errno == EINTR) {}
        if (WIFSIGNALED(st)) {
            report_exit("SIGNAL", WTERMSIG(st));
            signal(WTERMSIG(st), SIG_DFL);
            kill(getpid(), WTERMSIG(st));
        }
        report_exit("EXIT", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    }
    signal(SIGTERM, SIG_DFL);
    if (exit_fd >= 0) { close(exit_fd); exit_fd = -1; }  /* the parent reports our end */
    /* -T: stdin is a terminal; the command leads a session inside the container's PID
     * namespace with it as controlling terminal, so shells see their own process groups */
    if (ctty && (setsid() < 0 || ioctl(0, TIOCSCTTY, 0) < 0)) die("controlling terminal", "");
    if (have_caps)
        for (int c = 0; c <= 63; c++)  /* EINVAL: past the kernel's last capability */
            if (!(caps & (1ULL << c)) && prctl(PR_CAPBSET_DROP, c, 0, 0, 0) < 0 && errno == EINVAL) break;
    if (have_uid) {
        if (setgroups((size_t)ngroups, groups) < 0) die("setgroups", "");
        if (setgid(gid) < 0) die("setgid", "");
        if (setuid(uid) < 0) die("setuid", "");
    }
    if (have_caps && (!have_uid || uid == 0)) {
        struct __user_cap_header_struct h = {_LINUX_CAPABILITY_VERSION_3, 0};
        struct __user_cap_data_struct d[2];
        for (int i = 0; i < 2; i++)
            d[i].effective = d[i].permitted = d[i].inheritable = (uint32_t)(caps >> (32 * i));
        if (syscall(SYS_capset, &h, d) < 0) die("capset", "");
    }
    if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) die("no_new_privs", "");
    if (chdir(cwd) < 0 && chdir("/") < 0) die("chdir", cwd);
    execvp(argv[optind], argv + optind);
    die("exec", argv[optind]);
    return 127;
}

/* ---------------------------------------------------------------- zygote */
/* A request is one SOCK_SEQPACKET message: "pkz1", then "E" (environment follows) or "-"
 * (inherit the zygote's) with the number of argv fields in decimal, then the argv fields
 * (empty ones too) and the environment entries, all NUL-terminated. Its SCM_RIGHTS fds: first where the helper reports (its OK/ERR line;
 * for enter its pidfd and its end too), then for enter the exec's stdin, stdout and stderr. */

#define ZREQ_MAX (256 * 1024)
#define ZREQ_FDS 4
static char *title_start = NULL;
static size_t title_len = 0;

static void set_title(char *const *argv) {
    if (!title_start) return;
    size_t off = 0;
    memset(title_start, 0, title_len);
    for (int i = 0; argv[i] && off + 1 < title_len; i++) {
        size_t n = strlen(argv[i]);
        if (off + n + 1 >= title_len) n = title_len - off - 2;
        memcpy(title_start + off, argv[i], n);
        off += n;
        title_start[off++] = ' ';
    }
    if (off) title_start[off - 1] = 0;
}

static int dispatch(int argc, char **argv);

/* enter, forked by the zygote: what posix_spawn(setsid) of "pkshim enter" gives (a session of
 * its own, the exec's pipes on 0-2), its report socket kept on fd 3 (close-on-exec), and
 * "OK <pid>" sent with a pidfd of itself, the agent's race-free handle for a kill */
static void enter_setup(const int *fds, int nfds) {
    if (nfds != ZREQ_FDS) { report("ERR enter needs a report socket and 3 stdio fds\n"); _exit(2); }
    if (setsid() < 0) fail("setsid");
    for (int i = 0; i < 3; i++)
        if (dup2(fds[i + 1], i) < 0) fail("dup2");
    int rfd = fds[0];
    if (rfd != 3) {
        if (dup3(rfd, 3, O_CLOEXEC) < 0) fail("dup3");
        close(rfd);
    }
    ready_fd = -1;
    int pidfd = (int)syscall(SYS_pidfd_open, getpid(), 0);
    if (pidfd < 0) { ready_fd = 3; fail("pidfd_open"); }
    char line[64];
    int n = snprintf(line, sizeof line, "OK %d\n", (int)getpid());
    if (send_with_fd(3, line, (size_t)n, pidfd, MSG_NOSIGNAL) < 0) _exit(1);  /* the agent is gone */
    close(pidfd);
    exit_fd = 3;
}

static void zygote_child(char *buf, size_t n, const int *fds, int nfds) {
    signal(SIGCHLD, SIG_DFL);
    ready_fd = fds[0];
    char *fields[8192];
    size_t nf = 0;
    for (size_t i = 0; i < n && nf < 8191; ) {
        fields[nf++] = buf + i;
        i += strlen(buf + i) + 1;
    }
    if (nf < 3 || strcmp(fields[0], "pkz1") != 0) { report("ERR bad zygote request\n"); _exit(2); }
    int with_env = fields[1][0] == 'E';
    size_t a = 2, end = a + strtoul(fields[1] + 1, NULL, 10);
    if (end > nf || end == a) { report("ERR bad zygote request\n"); _exit(2); }
    char **argv = calloc(end - a + 1, sizeof *argv);
    if (!argv) fail("calloc");
    for (size_t i = a; i < end; i++) argv[i - a] = fields[i];
    if (with_env) {
        size_t ne = nf - end;
        char **envp = calloc(ne + 1, sizeof *envp);
        if (!envp) fail("calloc");
        for (size_t i = 0; i < ne; i++) envp[i] = fields[end + i];
        environ = envp;
    }
    int enter = end - a >= 2 && strcmp(argv[1], "enter") == 0;
    if (enter) enter_setup(fds, nfds);
    else
        for (int i = 1; i < nfds; i++) close(fds[i]);
    set_title(argv);
    optind = 0;  /* a fresh getopt for the helper's own options */
    int rc = dispatch((int)(end - a), argv);
    report_exit("EXIT", rc);
    _exit(rc);
}

/* the zygote reaps its helpers itself rather than ignoring SIGCHLD: their CPU time then adds
 * up in its own (cutime/cstime), so that what the node spends on helpers stays measurable */
static void on_zygote_child(int sig) {
    (void)sig;
    int e = errno;
    while (waitpid(-1, NULL, WNOHANG) > 0) {}
    errno = e;
}

static int cmd_zygote(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_zygote_child;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &sa, NULL);
    static char buf[ZREQ_MAX + 1];
    for (;;) {
        char cbuf[CMSG_SPACE(ZREQ_FDS * sizeof(int))];
        struct iovec iov = {.iov_base = buf, .iov_len = ZREQ_MAX};
        struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf,
                             .msg_controllen = sizeof cbuf};
        ssize_t n = recvmsg(0, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return 0;  /* the agent closed its end (or died) */
        int fds[ZREQ_FDS], nfds = 0;
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
            nfds = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
            if (nfds > ZREQ_FDS) nfds = ZREQ_FDS;
            memcpy(fds, CMSG_DATA(c), (size_t)nfds * sizeof(int));
        }
        if (nfds == 0) continue;
        if (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
            const char *e = "ERR zygote request too large\n";
            if (write(fds[0], e, strlen(e)) < 0) {}
        } else {
            buf[n] = 0;
            pid_t pid = fork();
            if (pid == 0) {
                close(0);
                zygote_child(buf, (size_t)n, fds, nfds);
            }
            if (pid < 0) {
                char e[128];
                snprintf(e, sizeof e, "ERR zygote fork: %s\n", strerror(errno));
                if (write(fds[0], e, strlen(e)) < 0) {}
            }
        }
        for (int i = 0; i < nfds; i++) close(fds[i]);
    }
}

static int dispatch(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "pause") == 0) return cmd_pause(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "run") == 0) return cmd_run(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "enter") == 0 && exit_fd >= 0) return cmd_enter(argc - 1, argv + 1);
    fprintf(stderr, "pkshim zygote: only pause, run and enter are launched\n");
    report("ERR zygote: only pause, run and enter are launched\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc >= 2 && strcmp(argv[1], "zygote") == 0) {
        /* the argv area (padded by the agent) becomes each helper's command line in ps */
        title_start = argv[0];
        title_len = (size_t)(argv[argc - 1] + strlen(argv[argc - 1]) - argv[0]) + 1;
        char *self[] = {argv[0], "zygote", NULL};
        char name[4096];
        snprintf(name, sizeof name, "%s", argv[0]);
        self[0] = name;
        set_title(self);
        return cmd_zygote();
    }
    if (argc >= 2 && strcmp(argv[1], "pause") == 0) return cmd_pause(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "run") == 0) return cmd_run(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "enter") == 0) return cmd_enter(argc - 1, argv + 1);
    if (argc >= 2 && strcmp(argv[1], "init") == 0) return cmd_init(argc - 1, argv + 1);
    fprintf(stderr, "usage: pkshim pause|run|init|enter ...\n");
    return 2;
}

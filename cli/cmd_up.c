/*
 * cmd_up.c - `lepton up`, `lepton down`, `lepton status`: the whole suite on one machine.
 *
 * `up` trains each service's default model from the project's data/ on first start (by running
 * the app binaries' own `train` sub-commands, one after the other, with a progress line), caches
 * it under the state folder with a stamp of what it was trained from, then starts the four
 * services and the console as children, waits until each answers /readyz, prints where they
 * are, and supervises them: a crashed child restarts after 1, 2, 4 ... 60 s (the delay resets
 * once a child has run 60 s), SIGINT/SIGTERM/SIGHUP stop every child (SIGTERM, up to 10 s,
 * then SIGKILL) and `up` exits 0. `down` signals the supervisor and waits until it and every
 * child are gone; `status` reports each child from the supervisor's status file plus a live
 * /healthz probe. It does not build anything and does not edit the services' configuration.
 *
 * State folder (--state, else $LEPTON_STATE, else $HOME/.local/share/lepton):
 *   models/<service>.lpm  + models/<service>.stamp  (what the model was trained from)
 *   db/<service>.db       each service's SQLite file
 *   logs/<service>.log    each child's stdout+stderr; logs/<service>-train.log; lepton-up.log
 *   run/up.pid, run/<service>.pid, run/status.json, run/up.lock (flock while `up` runs)
 *
 * Invariants: the supervisor is single-threaded and keeps SIGCHLD/SIGINT/SIGTERM/SIGHUP
 * blocked, taking them with sigtimedwait, so no handler races and no call sees EINTR from
 * them; children get a clean signal state and no inherited descriptors (supervise.c).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "commands.h"
#include "supervise.h"

#define N_SVC 4
#define STOP_GRACE_S 10.0  /* SIGTERM, then SIGKILL after this long */
#define BACKOFF_MAX_S 60.0 /* restart delays double up to this */
#define HEALTHY_RESET_S 60.0 /* a child that ran this long restarts after 1 s again */
#define READY_TIMEOUT_S 90.0 /* every service must answer /readyz within this */
#define MAX_ARGS 48

typedef struct svc_def {
    const char *name;    /* "customer-service": file names in the state folder */
    const char *bin;     /* the app binary beside `lepton` */
    unsigned port;       /* default port */
    bool host_flag;      /* `serve` takes --host */
    bool keys_flag;      /* `serve` takes --api-keys FILE (guards its admin routes) */
    const char *try_path; /* shown in the table */
} svc_def;

static const svc_def SVC[N_SVC] = {
    {"customer-service", "lepton-customer-service", 8081, true, true, "POST /v1/chat"},
    {"fraud", "lepton-fraud", 8082, true, false, "POST /v1/score"},
    {"recommend", "lepton-recommend", 8083, true, true, "GET /v1/recommend?user=u0001"},
    {"diagnosis", "lepton-diagnosis", 8084, false, false, "POST /v1/diagnose"},
};

/* The default models: models/<name>.lpm, trained by service svc's binary. Diagnosis serves two
 * (images and symptom texts). */
typedef struct model_def {
    const char *name;      /* file names in the state folder */
    int svc;               /* index in SVC */
    const char *inputs[6]; /* data files (or folders) under --data the model is trained from */
    const char *env[3];    /* environment variables that change training */
} model_def;

#define N_MODELS 5
static const model_def MODEL[N_MODELS] = {
    {"customer-service", 0,
     {"support-bot/intents_train.tsv", "support-bot/intents_valid.tsv", "support-bot/slots.tsv",
      "support-bot/faq.tsv", "support-bot/bot.json", NULL},
     {NULL}},
    {"fraud", 1, {"fraud/transactions.csv", NULL}, {NULL}},
    {"recommend", 2, {"shop/events.csv", NULL}, {NULL}},
    {"diagnosis", 3, {"diagnosis/images", NULL}, {"DX_EPOCHS", "DX_ARCH", NULL}},
    {"diagnosis-text", 3, {"diagnosis/symptoms.csv", NULL}, {NULL}},
};

typedef struct up_cfg {
    char state[PATH_MAX], data[PATH_MAX], bindir[PATH_MAX], self[PATH_MAX];
    const char *host;
    char api_keys[PATH_MAX]; /* "" when not given */
    unsigned port[N_SVC];
    unsigned console_port; /* 0: no console */
    bool detach;
} up_cfg;

/* ---- small string helpers ---------------------------------------------------------------- */

typedef struct argvec {
    char *v[MAX_ARGS + 1];
    int n;
} argvec;

static void av_push(argvec *a, const char *fmt, ...) LP_PRINTF(2, 3);
static void av_push(argvec *a, const char *fmt, ...)
{
    if (a->n >= MAX_ARGS)
        return;
    va_list ap;
    va_start(ap, fmt);
    char buf[PATH_MAX + 64];
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    a->v[a->n] = lp_strdup(buf);
    if (a->v[a->n])
        a->v[++a->n] = NULL;
}

static void av_free(argvec *a)
{
    for (int i = 0; i < a->n; i++)
        free(a->v[i]);
    a->n = 0;
    a->v[0] = NULL;
}

static void path_of(char *out, const up_cfg *c, const char *sub, const char *name,
                    const char *ext)
{
    snprintf(out, PATH_MAX, "%s/%s/%s%s", c->state, sub, name, ext);
}

static bool is_dir(const char *p)
{
    struct stat sb;
    return stat(p, &sb) == 0 && S_ISDIR(sb.st_mode);
}

/* ---- configuration ------------------------------------------------------------------------ */

/* The folder of the running `lepton` binary, so the app binaries are found beside it. */
static lp_status find_self(up_cfg *c, lp_err *err)
{
    ssize_t n = readlink("/proc/self/exe", c->self, sizeof c->self - 1);
    if (n <= 0)
        return lp_err_set(err, LP_EIO, "/proc/self/exe: %s", strerror(errno));
    c->self[n] = 0;
    snprintf(c->bindir, sizeof c->bindir, "%s", c->self);
    char *slash = strrchr(c->bindir, '/');
    if (slash)
        *slash = 0;
    return LP_OK;
}

/* --state, $LEPTON_STATE, or $HOME/.local/share/lepton; made absolute (and created if mk). */
static lp_status resolve_state(up_cfg *c, const char *opt, bool mk, lp_err *err)
{
    char raw[PATH_MAX];
    const char *env = getenv("LEPTON_STATE"), *home = getenv("HOME");
    if (opt && *opt)
        snprintf(raw, sizeof raw, "%s", opt);
    else if (env && *env)
        snprintf(raw, sizeof raw, "%s", env);
    else if (home && *home)
        snprintf(raw, sizeof raw, "%s/.local/share/lepton", home);
    else
        return lp_err_set(err, LP_EINVAL, "no --state given and neither LEPTON_STATE nor HOME "
                                          "is set");
    if (mk) {
        lp_status st = sv_mkdirs(raw, err);
        if (st)
            return st;
    }
    if (!realpath(raw, c->state)) {
        if (errno == ENOENT && !mk) { /* down/status on a folder never used: report, not fail */
            snprintf(c->state, sizeof c->state, "%s", raw);
            return LP_OK;
        }
        return lp_err_set(err, LP_EIO, "state folder %s: %s", raw, strerror(errno));
    }
    return LP_OK;
}

static lp_status resolve_data(up_cfg *c, const char *opt, lp_err *err)
{
    char raw[PATH_MAX];
    if (opt) {
        snprintf(raw, sizeof raw, "%s", opt);
    } else {
        snprintf(raw, sizeof raw, "%s/../../data", c->bindir);
        char probe[PATH_MAX + 16];
        snprintf(probe, sizeof probe, "%s/support-bot", raw);
#ifdef LEPTON_SOURCE_DIR
        if (!is_dir(probe))
            snprintf(raw, sizeof raw, "%s/data", LEPTON_SOURCE_DIR);
#endif
    }
    if (!realpath(raw, c->data) || !is_dir(c->data))
        return lp_err_set(err, LP_ENOTFOUND,
                          "data folder %s not found (it holds support-bot/, fraud/, shop/, "
                          "diagnosis/; pass --data DIR)", raw);
    for (int k = 0; k < N_MODELS; k++)
        for (int i = 0; MODEL[k].inputs[i]; i++) {
            char p[PATH_MAX * 2];
            snprintf(p, sizeof p, "%s/%s", c->data, MODEL[k].inputs[i]);
            if (access(p, R_OK) != 0)
                return lp_err_set(err, LP_ENOTFOUND, "%s: %s (needed to train %s)", p,
                                  strerror(errno), MODEL[k].name);
        }
    return LP_OK;
}

/* ---- training and the model cache --------------------------------------------------------- */

/* The `train` command line of model k, writing to out. Defaults chosen for a quick first
 * start on two cores: see docs/operations.md. */
static void train_args(const up_cfg *c, int k, const char *out, argvec *a)
{
    const char *d = c->data;
    av_push(a, "%s/%s", c->bindir, SVC[MODEL[k].svc].bin);
    av_push(a, "train");
    switch (k) {
    case 0:
        av_push(a, "--data"), av_push(a, "%s/support-bot/intents_train.tsv", d);
        av_push(a, "--valid"), av_push(a, "%s/support-bot/intents_valid.tsv", d);
        av_push(a, "--slots"), av_push(a, "%s/support-bot/slots.tsv", d);
        av_push(a, "--faq"), av_push(a, "%s/support-bot/faq.tsv", d);
        av_push(a, "--bot"), av_push(a, "%s/support-bot/bot.json", d);
        break;
    case 1:
        av_push(a, "--data"), av_push(a, "%s/fraud/transactions.csv", d);
        av_push(a, "--label"), av_push(a, "tx_fraud");
        av_push(a, "--time-col"), av_push(a, "tx_datetime");
        av_push(a, "--entity-cols"), av_push(a, "customer_id,terminal_id");
        av_push(a, "--amount-col"), av_push(a, "tx_amount");
        av_push(a, "--id-col"), av_push(a, "transaction_id");
        av_push(a, "--drop-cols"), av_push(a, "tx_fraud_scenario");
        av_push(a, "--threads"), av_push(a, "2");
        break;
    case 2:
        av_push(a, "--data"), av_push(a, "%s/shop/events.csv", d);
        av_push(a, "--type-col"), av_push(a, "type");
        /* --model auto (the default): als, bpr or itemknn, whichever does best on each
         * user's last events (itemknn on the demo shop) */
        av_push(a, "--factors"), av_push(a, "32");
        av_push(a, "--threads"), av_push(a, "2");
        av_push(a, "--seed"), av_push(a, "42");
        break;
    case 3:
        av_push(a, "--images"), av_push(a, "%s/diagnosis/images", d);
        break;
    default:
        av_push(a, "--text"), av_push(a, "%s/diagnosis/symptoms.csv", d);
        break;
    }
    av_push(a, "--out"), av_push(a, "%s", out);
}

static void stamp_file(lp_buf *b, const char *path, int depth)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        lp_buf_printf(b, "missing %s\n", path);
        return;
    }
    if (!S_ISDIR(sb.st_mode)) {
        lp_buf_printf(b, "file %s %lld %lld.%09ld\n", path, (long long)sb.st_size,
                      (long long)sb.st_mtim.tv_sec, sb.st_mtim.tv_nsec);
        return;
    }
    struct dirent **names = NULL;
    int n = depth < 4 ? scandir(path, &names, NULL, alphasort) : -1;
    for (int i = 0; i < n; i++) {
        if (names[i]->d_name[0] != '.') {
            char sub[PATH_MAX + 256];
            snprintf(sub, sizeof sub, "%s/%s", path, names[i]->d_name);
            stamp_file(b, sub, depth + 1);
        }
        free(names[i]);
    }
    free(names);
}

/* What cached model k must have been trained from: the command line, the
 * variables that change training, and size+mtime of the binary and of every input file. */
static char *stamp_text(const up_cfg *c, int k, const argvec *train)
{
    lp_buf b;
    lp_buf_init(&b);
    lp_buf_printf(&b, "lepton-up-stamp 1\nservice %s\nargv", MODEL[k].name);
    for (int i = 0; i < train->n; i++)
        lp_buf_printf(&b, " %s", train->v[i]);
    lp_buf_printf(&b, "\n");
    for (int i = 0; MODEL[k].env[i]; i++) {
        const char *v = getenv(MODEL[k].env[i]);
        lp_buf_printf(&b, "env %s=%s\n", MODEL[k].env[i], v ? v : "");
    }
    stamp_file(&b, train->v[0], 0);
    for (int i = 0; MODEL[k].inputs[i]; i++) {
        char p[PATH_MAX * 2];
        snprintf(p, sizeof p, "%s/%s", c->data, MODEL[k].inputs[i]);
        stamp_file(&b, p, 0);
    }
    size_t len;
    return (char *)lp_buf_take(&b, &len);
}

static bool stamp_matches(const char *path, const char *want)
{
    uint8_t *have = NULL;
    size_t len = 0;
    if (lp_file_read(path, &have, &len, NULL))
        return false;
    bool same = len == strlen(want) && memcmp(have, want, len) == 0;
    free(have);
    return same;
}

static void clear_line(bool tty)
{
    if (tty)
        fputs("\r\033[K", stderr);
}

/* Train the models whose stamp is stale, one after the other. Returns 0, 1 on failure, 130 when
 * interrupted (the training child is stopped first). */
static int train_models(const up_cfg *c, const sigset_t *sigs)
{
    bool need[N_MODELS];
    int n_need = 0;
    char *stamps[N_MODELS] = {0};
    char model[N_MODELS][PATH_MAX], tmp[N_MODELS][PATH_MAX], stampf[N_MODELS][PATH_MAX];
    argvec train[N_MODELS];
    for (int k = 0; k < N_MODELS; k++) {
        path_of(model[k], c, "models", MODEL[k].name, ".lpm");
        path_of(tmp[k], c, "models", MODEL[k].name, ".training.lpm");
        path_of(stampf[k], c, "models", MODEL[k].name, ".stamp");
        train[k].n = 0;
        train_args(c, k, tmp[k], &train[k]);
        stamps[k] = stamp_text(c, k, &train[k]);
        need[k] = !stamps[k] || access(model[k], R_OK) != 0 || !stamp_matches(stampf[k], stamps[k]);
        n_need += need[k];
    }
    bool tty = isatty(2);
    int rc = 0, step = 0;
    if (!n_need)
        fprintf(stderr, "lepton up: models are up to date in %s/models (trained earlier; delete "
                        "a .stamp file to retrain that model)\n", c->state);
    uint64_t t_all = lp_time_ns();
    for (int k = 0; k < N_MODELS && !rc; k++) {
        if (!need[k])
            continue;
        step++;
        char log[PATH_MAX];
        path_of(log, c, "logs", MODEL[k].name, "-train.log");
        unlink(log);
        unlink(stampf[k]);
        unlink(tmp[k]);
        if (!tty)
            fprintf(stderr, "lepton up: [%d/%d] training %s (log: %s)\n", step, n_need,
                    MODEL[k].name, log);
        lp_err err;
        pid_t pid = 0;
        uint64_t t0 = lp_time_ns();
        if (sv_spawn(train[k].v, log, &pid, &err)) {
            fprintf(stderr, "lepton up: %s\n", lp_err_text(&err));
            rc = 1;
            break;
        }
        int status = 0;
        for (;;) {
            pid_t r = waitpid(pid, &status, WNOHANG);
            if (r == pid || (r < 0 && errno != EINTR))
                break;
            if (tty)
                fprintf(stderr, "\r\033[Klepton up: [%d/%d] training %s ... %.1f s", step,
                        n_need, MODEL[k].name, lp_time_since(t0));
            struct timespec ts = {0, 200 * 1000 * 1000};
            int sig = sigtimedwait(sigs, NULL, &ts);
            if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
                kill(pid, SIGTERM);
                while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                    ;
                clear_line(tty);
                fprintf(stderr, "lepton up: interrupted while training %s\n", MODEL[k].name);
                unlink(tmp[k]);
                rc = 130;
                break;
            }
        }
        if (rc)
            break;
        clear_line(tty);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            fprintf(stderr, "lepton up: training %s failed (%s %d); see %s\n", MODEL[k].name,
                    WIFEXITED(status) ? "exit status" : "signal",
                    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), log);
            rc = 1;
            break;
        }
        if (rename(tmp[k], model[k]) != 0 ||
            lp_file_write(stampf[k], stamps[k], strlen(stamps[k]), &err)) {
            fprintf(stderr, "lepton up: saving the %s model in %s failed: %s\n", MODEL[k].name,
                    model[k], strerror(errno));
            rc = 1;
            break;
        }
        fprintf(stderr, "lepton up: [%d/%d] %s trained in %.1f s -> %s\n", step, n_need,
                MODEL[k].name, lp_time_since(t0), model[k]);
    }
    if (!rc && n_need)
        fprintf(stderr, "lepton up: %d model(s) trained in %.1f s\n", n_need,
                lp_time_since(t_all));
    for (int k = 0; k < N_MODELS; k++) {
        free(stamps[k]);
        av_free(&train[k]);
    }
    return rc;
}

/* ---- the supervisor ----------------------------------------------------------------------- */

typedef enum child_state {
    CHILD_STATE_RUNNING,
    CHILD_STATE_WAITING, /* exited; restarts at restart_at */
    CHILD_STATE_FAILED,  /* exited with a usage error (2): restarting would not help */
    CHILD_STATE_STOPPED,
} child_state;

static const char *child_state_name(child_state s)
{
    static const char *names[] = {"running", "restarting", "failed", "stopped"};
    return names[s];
}

typedef struct child {
    const char *name;
    bool console;
    argvec argv;
    char log[PATH_MAX], pidfile[PATH_MAX], model[PATH_MAX];
    unsigned port;
    pid_t pid;
    child_state state;
    int restarts;
    bool ready;
    double started_wall;
    uint64_t started_ns, restart_at_ns;
    double backoff_s;
    char note[160];
} child;

typedef struct sup {
    up_cfg *cfg;
    child kids[N_SVC + 1];
    int n;
    sigset_t sigs;
    bool stopping;
    char status_path[PATH_MAX];
} sup;

static void write_status(sup *s)
{
    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, "supervisor_pid", (double)getpid());
    cJSON_AddStringToObject(j, "host", s->cfg->host);
    cJSON_AddStringToObject(j, "data", s->cfg->data);
    cJSON *arr = cJSON_AddArrayToObject(j, "children");
    for (int i = 0; i < s->n; i++) {
        const child *k = &s->kids[i];
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", k->name);
        cJSON_AddBoolToObject(o, "console", k->console);
        cJSON_AddNumberToObject(o, "pid", k->state == CHILD_STATE_RUNNING ? (double)k->pid : 0);
        cJSON_AddNumberToObject(o, "port", k->port);
        cJSON_AddStringToObject(o, "state", child_state_name(k->state));
        cJSON_AddNumberToObject(o, "restarts", k->restarts);
        cJSON_AddNumberToObject(o, "started", k->started_wall);
        cJSON_AddStringToObject(o, "model", k->model);
        cJSON_AddStringToObject(o, "log", k->log);
        cJSON_AddStringToObject(o, "note", k->note);
        cJSON_AddItemToArray(arr, o);
    }
    char *txt = cJSON_Print(j);
    cJSON_Delete(j);
    lp_err err;
    if (!txt || lp_file_write(s->status_path, txt, strlen(txt), &err))
        lp_log_warn("writing %s failed", s->status_path);
    free(txt);
}

static void spawn_child(sup *s, child *k)
{
    lp_err err;
    k->ready = false;
    k->note[0] = 0;
    if (sv_spawn(k->argv.v, k->log, &k->pid, &err)) {
        lp_log_error("%s: %s", k->name, lp_err_text(&err));
        k->state = CHILD_STATE_WAITING;
        k->restart_at_ns = lp_time_ns() + (uint64_t)(k->backoff_s * 1e9);
        k->backoff_s = k->backoff_s * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : k->backoff_s * 2;
        return;
    }
    k->state = CHILD_STATE_RUNNING;
    k->started_ns = lp_time_ns();
    k->started_wall = lp_time_wall();
    if (sv_pid_write(k->pidfile, k->pid, &err))
        lp_log_warn("%s", lp_err_text(&err));
    lp_log_info("%s started (pid %ld, port %u, log %s)", k->name, (long)k->pid, k->port, k->log);
}

/* Reap every exited child and schedule its restart. Returns true when something changed. */
static bool reap(sup *s)
{
    bool changed = false;
    for (;;) {
        int st = 0;
        pid_t p = waitpid(-1, &st, WNOHANG);
        if (p < 0 && errno == EINTR)
            continue;
        if (p <= 0)
            break;
        for (int i = 0; i < s->n; i++) {
            child *k = &s->kids[i];
            if (k->pid != p || k->state != CHILD_STATE_RUNNING)
                continue;
            changed = true;
            double ran = lp_time_since(k->started_ns);
            char how[64];
            if (WIFEXITED(st))
                snprintf(how, sizeof how, "exit status %d", WEXITSTATUS(st));
            else
                snprintf(how, sizeof how, "signal %d", WIFSIGNALED(st) ? WTERMSIG(st) : 0);
            k->pid = 0;
            unlink(k->pidfile);
            if (s->stopping) {
                k->state = CHILD_STATE_STOPPED;
                break;
            }
            if (WIFEXITED(st) && WEXITSTATUS(st) == 2) {
                k->state = CHILD_STATE_FAILED;
                char note[sizeof k->note];
                snprintf(note, sizeof note, "%s after %.1f s (%s); not restarted, see %s", how,
                         ran, k->console ? "`lepton console` is not available in this build"
                                         : "usage error", k->log);
                memcpy(k->note, note, sizeof note);
                lp_log_error("%s: %s", k->name, k->note);
                break;
            }
            if (ran >= HEALTHY_RESET_S)
                k->backoff_s = 1.0;
            k->state = CHILD_STATE_WAITING;
            k->restart_at_ns = lp_time_ns() + (uint64_t)(k->backoff_s * 1e9);
            snprintf(k->note, sizeof k->note, "%s after %.1f s; restarting in %.0f s", how, ran,
                     k->backoff_s);
            lp_log_warn("%s (exited): %s", k->name, k->note);
            k->backoff_s = k->backoff_s * 2 > BACKOFF_MAX_S ? BACKOFF_MAX_S : k->backoff_s * 2;
            break;
        }
    }
    return changed;
}

/* One turn of the loop: wait up to timeout_ms for a signal, reap, restart what is due.
 * Returns false once a stop signal arrived. */
static bool sup_step(sup *s, int timeout_ms)
{
    uint64_t now = lp_time_ns();
    for (int i = 0; i < s->n; i++) {
        const child *k = &s->kids[i];
        if (k->state == CHILD_STATE_WAITING) {
            int ms = k->restart_at_ns > now ? (int)((k->restart_at_ns - now) / 1000000u) + 1 : 0;
            if (ms < timeout_ms)
                timeout_ms = ms;
        }
    }
    struct timespec ts = {timeout_ms / 1000, (long)(timeout_ms % 1000) * 1000000L};
    int sig = sigtimedwait(&s->sigs, NULL, &ts);
    sigset_t pending;
    /* A Ctrl-C reaches the children too (same process group): when a stop signal is pending
     * behind SIGCHLD, stop first, so their exits are not taken for crashes. */
    if (sig == SIGCHLD && sigpending(&pending) == 0 &&
        (sigismember(&pending, SIGINT) == 1 || sigismember(&pending, SIGTERM) == 1 ||
         sigismember(&pending, SIGHUP) == 1))
        sig = sigtimedwait(&s->sigs, NULL, &(struct timespec){0, 0});
    if (sig == SIGINT || sig == SIGTERM || sig == SIGHUP) {
        lp_log_info("signal %d: stopping every child", sig);
        s->stopping = true;
        return false;
    }
    bool changed = reap(s);
    now = lp_time_ns();
    for (int i = 0; i < s->n; i++) {
        child *k = &s->kids[i];
        if (k->state == CHILD_STATE_WAITING && k->restart_at_ns <= now) {
            k->restarts++;
            spawn_child(s, k);
            changed = true;
        }
    }
    if (changed)
        write_status(s);
    return true;
}

/* SIGTERM every running child, wait up to STOP_GRACE_S, SIGKILL what is left, reap all. */
static void stop_all(sup *s)
{
    s->stopping = true;
    for (int i = 0; i < s->n; i++)
        if (s->kids[i].state == CHILD_STATE_RUNNING)
            kill(s->kids[i].pid, SIGTERM);
    uint64_t t0 = lp_time_ns();
    bool killed = false;
    for (;;) {
        reap(s);
        int running = 0;
        for (int i = 0; i < s->n; i++)
            running += s->kids[i].state == CHILD_STATE_RUNNING;
        if (!running)
            break;
        if (!killed && lp_time_since(t0) >= STOP_GRACE_S) {
            for (int i = 0; i < s->n; i++)
                if (s->kids[i].state == CHILD_STATE_RUNNING) {
                    lp_log_warn("%s (pid %ld) ignored SIGTERM for %.0f s: SIGKILL",
                                s->kids[i].name, (long)s->kids[i].pid, STOP_GRACE_S);
                    kill(s->kids[i].pid, SIGKILL);
                }
            killed = true;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        (void)sigtimedwait(&s->sigs, NULL, &ts); /* further stop signals change nothing */
    }
    for (int i = 0; i < s->n; i++) {
        s->kids[i].state = CHILD_STATE_STOPPED;
        unlink(s->kids[i].pidfile);
    }
}

static void build_children(sup *s)
{
    up_cfg *c = s->cfg;
    s->n = 0;
    for (int k = 0; k < N_SVC; k++) {
        child *ch = &s->kids[s->n++];
        memset(ch, 0, sizeof *ch);
        ch->name = SVC[k].name;
        ch->port = c->port[k];
        ch->backoff_s = 1.0;
        path_of(ch->log, c, "logs", ch->name, ".log");
        path_of(ch->pidfile, c, "run", ch->name, ".pid");
        path_of(ch->model, c, "models", ch->name, ".lpm");
        argvec *a = &ch->argv;
        av_push(a, "%s/%s", c->bindir, SVC[k].bin);
        av_push(a, "serve");
        if (k == 3) { /* diagnosis: the image model and the symptom-text model */
            char text[PATH_MAX];
            path_of(text, c, "models", "diagnosis-text", ".lpm");
            av_push(a, "--image-model"), av_push(a, "%s", ch->model);
            av_push(a, "--text-model"), av_push(a, "%s", text);
        } else {
            av_push(a, "--model"), av_push(a, "%s", ch->model);
        }
        av_push(a, "--port"), av_push(a, "%u", ch->port);
        av_push(a, "--db"), av_push(a, "%s/db/%s.db", c->state, ch->name);
        if (SVC[k].host_flag)
            av_push(a, "--host"), av_push(a, "%s", c->host);
        if (SVC[k].keys_flag && c->api_keys[0])
            av_push(a, "--api-keys"), av_push(a, "%s", c->api_keys);
        if (strcmp(SVC[k].name, "fraud") == 0) /* the console's rule backtest replays it */
            av_push(a, "--history"), av_push(a, "%s/fraud/transactions.csv", c->data);
        if (strcmp(SVC[k].name, "recommend") == 0) { /* the events of the hour into the model */
            av_push(a, "--retrain-every"), av_push(a, "3600");
            /* the shop's catalog: ?category= filters, neighbours for new items */
            av_push(a, "--items"), av_push(a, "%s/shop/items.csv", c->data);
        }
    }
    if (c->console_port) {
        child *ch = &s->kids[s->n++];
        memset(ch, 0, sizeof *ch);
        ch->name = "console";
        ch->console = true;
        ch->port = c->console_port;
        ch->backoff_s = 1.0;
        path_of(ch->log, c, "logs", "console", ".log");
        path_of(ch->pidfile, c, "run", "console", ".pid");
        argvec *a = &ch->argv;
        av_push(a, "%s", c->self);
        av_push(a, "console");
        av_push(a, "--port"), av_push(a, "%u", c->console_port);
        av_push(a, "--state"), av_push(a, "%s", c->state);
        av_push(a, "--cs-port"), av_push(a, "%u", c->port[0]);
        av_push(a, "--fraud-port"), av_push(a, "%u", c->port[1]);
        av_push(a, "--recommend-port"), av_push(a, "%u", c->port[2]);
        av_push(a, "--diagnosis-port"), av_push(a, "%u", c->port[3]);
    }
}

static void report_table(const sup *s, lp_buf *b)
{
    const up_cfg *c = s->cfg;
    const char *h = strcmp(c->host, "0.0.0.0") && strcmp(c->host, "::") ? c->host : "127.0.0.1";
    lp_buf_printf(b, "lepton up: running (state %s)\n\n", c->state);
    lp_buf_printf(b, "  %-17s %-8s %-28s %s\n", "service", "pid", "url", "try");
    for (int i = 0; i < s->n; i++) {
        const child *k = &s->kids[i];
        char url[96];
        snprintf(url, sizeof url, "http://%s:%u/", h, k->port);
        if (k->console && k->state != CHILD_STATE_RUNNING) {
            lp_buf_printf(b, "  %-17s %-8s %-28s %s\n", k->name, "-", "(not running)", k->note);
            continue;
        }
        lp_buf_printf(b, "  %-17s %-8ld %-28s %s\n", k->name, (long)k->pid, url,
                      k->console ? "open it in a browser" : SVC[i].try_path);
    }
    lp_buf_printf(b, "\nlogs in %s/logs; `lepton status` reports, `lepton down` stops "
                     "everything%s\n", c->state, c->detach ? "" : " (or Ctrl-C here)");
}

/* Start every child and wait until each service answers /readyz 200 (the console: any HTTP
 * answer). Returns 0 when all are up, 1 with a message in msg when a service is not, 130 when a
 * stop signal arrived meanwhile. */
static int start_and_wait(sup *s, char *msg, size_t cap)
{
    for (int i = 0; i < s->n; i++)
        spawn_child(s, &s->kids[i]);
    write_status(s);
    uint64_t t0 = lp_time_ns();
    for (;;) {
        int waiting = 0;
        for (int i = 0; i < s->n; i++) {
            child *k = &s->kids[i];
            if (k->ready || k->state == CHILD_STATE_STOPPED)
                continue;
            if (k->state == CHILD_STATE_FAILED) {
                if (k->console)
                    continue;
                snprintf(msg, cap, "%s did not start: %s", k->name, k->note);
                return 1;
            }
            int code = 0;
            if (k->state == CHILD_STATE_RUNNING &&
                !sv_http_get(s->cfg->host, k->port, k->console ? "/healthz" : "/readyz", 500,
                             &code, NULL, 0, NULL) &&
                (k->console || code == 200)) {
                k->ready = true;
                lp_log_info("%s is up on port %u", k->name, k->port);
                continue;
            }
            waiting += !k->console;
        }
        if (!waiting)
            break;
        if (lp_time_since(t0) > READY_TIMEOUT_S) {
            for (int i = 0; i < s->n; i++)
                if (!s->kids[i].ready && !s->kids[i].console) {
                    snprintf(msg, cap, "%s did not answer /readyz on port %u within %.0f s "
                                       "(restarts: %d); see %s", s->kids[i].name,
                             s->kids[i].port, READY_TIMEOUT_S, s->kids[i].restarts,
                             s->kids[i].log);
                    break;
                }
            return 1;
        }
        if (!sup_step(s, 100))
            return 130;
    }
    return 0;
}

static void sup_free(sup *s)
{
    for (int i = 0; i < s->n; i++)
        av_free(&s->kids[i].argv);
}

/* The supervisor proper. notify_fd >= 0 (detached): the table or the error goes there, then it
 * is closed. Returns the exit status of `lepton up`. */
static int supervise(up_cfg *c, const sigset_t *sigs, int notify_fd)
{
    sup s;
    memset(&s, 0, sizeof s);
    s.cfg = c;
    s.sigs = *sigs;
    path_of(s.status_path, c, "run", "status", ".json");
    char pidfile[PATH_MAX];
    path_of(pidfile, c, "run", "up", ".pid");
    lp_err err;
    if (sv_pid_write(pidfile, getpid(), &err))
        lp_log_warn("%s", lp_err_text(&err));
    build_children(&s);
    char msg[PATH_MAX + 256] = "";
    int rc = start_and_wait(&s, msg, sizeof msg);
    lp_buf b;
    lp_buf_init(&b);
    if (rc == 0) {
        lp_buf_printf(&b, "ok\n");
        report_table(&s, &b);
    } else {
        lp_buf_printf(&b, "lepton up: %s\n", rc == 130 ? "interrupted while starting" : msg);
    }
    const char *text = b.data ? (const char *)b.data : "";
    size_t len = b.len;
    if (notify_fd >= 0) {
        for (size_t off = 0; off < len;) {
            ssize_t w = write(notify_fd, text + off, len - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                break;
            off += (size_t)w;
        }
        close(notify_fd);
    }
    if (rc == 0) {
        if (notify_fd < 0)
            fwrite(text + 3, 1, len - 3, stdout);
        fflush(stdout);
        lp_log_info("all services are up; supervising");
        while (sup_step(&s, 1000))
            ;
    } else {
        fprintf(stderr, "%.*s", (int)len, text);
    }
    lp_buf_free(&b);
    stop_all(&s);
    write_status(&s);
    unlink(pidfile);
    lp_log_info("stopped every child");
    if (notify_fd < 0 && rc == 0)
        fprintf(stderr, "lepton up: stopped every service\n");
    sup_free(&s);
    return rc == 130 ? 0 : rc;
}

/* Double fork: the grandchild (new session, cwd the state folder, output to
 * logs/lepton-up.log) supervises; this process waits for its report through a pipe. */
static int detach_and_supervise(up_cfg *c, const sigset_t *sigs)
{
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0) {
        fprintf(stderr, "lepton up: pipe: %s\n", strerror(errno));
        return 1;
    }
    fflush(NULL);
    pid_t mid = fork();
    if (mid < 0) {
        fprintf(stderr, "lepton up: fork: %s\n", strerror(errno));
        return 1;
    }
    if (mid == 0) {
        close(p[0]);
        setsid();
        pid_t daemon = fork();
        if (daemon != 0)
            _exit(daemon < 0 ? 1 : 0);
        char log[PATH_MAX];
        path_of(log, c, "logs", "lepton-up", ".log");
        int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int nul = open("/dev/null", O_RDONLY);
        if (fd < 0 || nul < 0 || chdir(c->state) != 0)
            _exit(1);
        dup2(nul, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        close(fd);
        close(nul);
        lp_log_set_json(1);
        _exit(supervise(c, sigs, p[1]));
    }
    close(p[1]);
    int st;
    while (waitpid(mid, &st, 0) < 0 && errno == EINTR)
        ;
    lp_buf b;
    lp_buf_init(&b);
    char chunk[4096];
    for (;;) {
        ssize_t r = read(p[0], chunk, sizeof chunk);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        lp_buf_put(&b, chunk, (size_t)r);
    }
    close(p[0]);
    int rc;
    if (b.len >= 3 && !memcmp(b.data, "ok\n", 3)) {
        fwrite(b.data + 3, 1, b.len - 3, stdout);
        rc = 0;
    } else if (b.len) {
        fwrite(b.data, 1, b.len, stderr);
        rc = 1;
    } else {
        fprintf(stderr, "lepton up: the supervisor ended without a report; see "
                        "%s/logs/lepton-up.log\n", c->state);
        rc = 1;
    }
    lp_buf_free(&b);
    return rc;
}

int cmd_up(int argc, char **argv)
{
    const char *state = NULL, *data = NULL, *host = "127.0.0.1", *keys = NULL;
    long ports[N_SVC] = {8081, 8082, 8083, 8084}, console = 8080;
    bool fg = false, detach = false;
    const arg_spec opts[] = {
        {"state", ARG_STR, &state, "DIR", "state folder (default $LEPTON_STATE, else "
                                          "~/.local/share/lepton)", 0, 0},
        {"console-port", ARG_INT, &console, "PORT", "web console port; 0 disables it "
                                                     "(default 8080)", 0, 65535},
        {"cs-port", ARG_INT, &ports[0], "PORT", "customer-service port (default 8081)", 1,
         65535},
        {"fraud-port", ARG_INT, &ports[1], "PORT", "fraud port (default 8082)", 1, 65535},
        {"recommend-port", ARG_INT, &ports[2], "PORT", "recommend port (default 8083)", 1,
         65535},
        {"diagnosis-port", ARG_INT, &ports[3], "PORT", "diagnosis port (default 8084)", 1,
         65535},
        {"host", ARG_STR, &host, "ADDR", "address the services listen on (default 127.0.0.1)",
         0, 0},
        {"data", ARG_STR, &data, "DIR", "the project's data/ folder the default models are "
                                        "trained from (default: found beside the binary)", 0, 0},
        {"api-keys", ARG_STR, &keys, "FILE", "API keys (one a line) for the admin routes of "
                                             "customer-service and recommend", 0, 0},
        {"foreground", ARG_FLAG, &fg, NULL, "stay in the foreground (the default)", 0, 0},
        {"detach", ARG_FLAG, &detach, NULL, "run in the background; return once all are up",
         0, 0},
    };
    const arg_cmd cmd = {"up", "[--state DIR] [--*-port PORT] [--host ADDR] [--data DIR] "
                               "[--detach]",
                         "Train the default models (first start only), start the four services "
                         "and the console, and supervise them.",
                         opts, sizeof opts / sizeof opts[0], 0, 0};
    size_t npos = 0;
    int rc = args_parse(&cmd, argc, argv, NULL, &npos);
    if (rc)
        return rc == 1 ? 0 : rc;
    if (fg && detach) {
        fprintf(stderr, "lepton up: --foreground and --detach exclude each other\n");
        return 2;
    }
    up_cfg c;
    memset(&c, 0, sizeof c);
    c.host = host;
    c.console_port = (unsigned)console;
    c.detach = detach;
    for (int k = 0; k < N_SVC; k++)
        c.port[k] = (unsigned)ports[k];
    unsigned all[N_SVC + 1];
    const char *names[N_SVC + 1];
    for (int k = 0; k < N_SVC; k++)
        all[k] = c.port[k], names[k] = SVC[k].name;
    all[N_SVC] = c.console_port, names[N_SVC] = "console";
    for (int i = 0; i <= N_SVC; i++)
        for (int j = i + 1; j <= N_SVC; j++)
            if (all[i] && all[i] == all[j]) {
                fprintf(stderr, "lepton up: port %u is given to both %s and %s\n", all[i],
                        names[i], names[j]);
                return 2;
            }
    lp_err err;
    lp_err_clear(&err);
    if (find_self(&c, &err) || resolve_state(&c, state, true, &err) ||
        resolve_data(&c, data, &err))
        return cli_fail("up", &err);
    if (keys && !realpath(keys, c.api_keys)) {
        fprintf(stderr, "lepton up: --api-keys %s: %s\n", keys, strerror(errno));
        return 1;
    }
    static const char *subs[] = {"models", "db", "logs", "run"};
    for (size_t i = 0; i < sizeof subs / sizeof subs[0]; i++) {
        char p[PATH_MAX + 16];
        snprintf(p, sizeof p, "%s/%s", c.state, subs[i]);
        if (sv_mkdirs(p, &err))
            return cli_fail("up", &err);
    }
    for (int k = 0; k < N_SVC; k++) {
        char bin[PATH_MAX + 64];
        snprintf(bin, sizeof bin, "%s/%s", c.bindir, SVC[k].bin);
        if (access(bin, X_OK) != 0) {
            fprintf(stderr, "lepton up: %s: %s (the service binaries are expected beside "
                            "lepton; build them with scripts/build)\n", bin, strerror(errno));
            return 1;
        }
    }

    char lockp[PATH_MAX], pidp[PATH_MAX];
    path_of(lockp, &c, "run", "up", ".lock");
    path_of(pidp, &c, "run", "up", ".pid");
    int lock_fd = -1;
    lp_status st = sv_lock(lockp, &lock_fd, &err);
    if (st == LP_EEXIST) {
        fprintf(stderr, "lepton up: already running on state folder %s (pid %ld); stop it with "
                        "`lepton down --state %s`\n", c.state, (long)sv_pid_read(pidp), c.state);
        return 1;
    }
    if (st)
        return cli_fail("up", &err);
    for (int i = 0; i <= N_SVC; i++) {
        if (!all[i])
            continue;
        if (sv_port_free(c.host, all[i], &err)) {
            fprintf(stderr, "lepton up: %s (wanted by %s; choose another with --%s-port, or "
                            "stop what holds it)\n", lp_err_text(&err), names[i],
                    i == 0 ? "cs" : names[i]);
            close(lock_fd);
            return 1;
        }
    }

    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGCHLD);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGHUP);
    sigprocmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);
    if (sv_pid_write(pidp, getpid(), &err))
        return cli_fail("up", &err);

    rc = train_models(&c, &sigs);
    if (rc) {
        unlink(pidp);
        close(lock_fd);
        return rc;
    }
    rc = c.detach ? detach_and_supervise(&c, &sigs) : supervise(&c, &sigs, -1);
    close(lock_fd);
    return rc;
}

/* ---- down and status ---------------------------------------------------------------------- */

static void child_pid_files(const up_cfg *c, char files[N_SVC + 1][PATH_MAX])
{
    for (int k = 0; k < N_SVC; k++)
        path_of(files[k], c, "run", SVC[k].name, ".pid");
    path_of(files[N_SVC], c, "run", "console", ".pid");
}

/* A pid from a pid file that is still one of ours: alive and running a lepton binary. */
static pid_t our_pid(const char *file)
{
    pid_t p = sv_pid_read(file);
    return p > 0 && sv_alive(p) && sv_cmdline_has(p, "lepton") ? p : 0;
}

int cmd_down(int argc, char **argv)
{
    const char *state = NULL;
    const arg_spec opts[] = {
        {"state", ARG_STR, &state, "DIR", "state folder (default $LEPTON_STATE, else "
                                          "~/.local/share/lepton)", 0, 0},
    };
    const arg_cmd cmd = {"down", "[--state DIR]",
                         "Stop `lepton up` and every service it started; wait until all are gone.",
                         opts, 1, 0, 0};
    size_t npos = 0;
    int rc = args_parse(&cmd, argc, argv, NULL, &npos);
    if (rc)
        return rc == 1 ? 0 : rc;
    up_cfg c;
    memset(&c, 0, sizeof c);
    lp_err err;
    if (resolve_state(&c, state, false, &err))
        return cli_fail("down", &err);
    char upf[PATH_MAX], files[N_SVC + 1][PATH_MAX];
    path_of(upf, &c, "run", "up", ".pid");
    child_pid_files(&c, files);
    pid_t up = our_pid(upf), kids[N_SVC + 1];
    int n_kids = 0;
    for (int i = 0; i <= N_SVC; i++)
        n_kids += (kids[i] = our_pid(files[i])) != 0;
    if (!up && !n_kids) {
        printf("lepton down: nothing runs on state folder %s\n", c.state);
        unlink(upf);
        for (int i = 0; i <= N_SVC; i++)
            unlink(files[i]);
        return 0;
    }
    /* The supervisor stops its children itself; children without a supervisor (it was killed)
     * are stopped here. */
    if (up)
        kill(up, SIGTERM);
    else
        for (int i = 0; i <= N_SVC; i++)
            if (kids[i])
                kill(kids[i], SIGTERM);
    uint64_t t0 = lp_time_ns();
    bool killed = false;
    for (;;) {
        int left = sv_alive(up);
        for (int i = 0; i <= N_SVC; i++)
            left += kids[i] && sv_alive(kids[i]);
        if (!left)
            break;
        if (!killed && lp_time_since(t0) > STOP_GRACE_S + 5) {
            if (up && sv_alive(up))
                kill(up, SIGKILL);
            for (int i = 0; i <= N_SVC; i++)
                if (kids[i] && sv_alive(kids[i]))
                    kill(kids[i], SIGKILL);
            killed = true;
        }
        if (killed && lp_time_since(t0) > STOP_GRACE_S + 15) {
            fprintf(stderr, "lepton down: processes of %s survived SIGKILL\n", c.state);
            return 1;
        }
        struct timespec ts = {0, 50 * 1000 * 1000};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
    }
    unlink(upf);
    for (int i = 0; i <= N_SVC; i++)
        unlink(files[i]);
    if (up)
        printf("lepton down: stopped lepton up (pid %ld) and its %d service(s)%s\n", (long)up,
               n_kids, killed ? " (some needed SIGKILL)" : "");
    else
        printf("lepton down: stopped %d service(s) left without a supervisor%s\n", n_kids,
               killed ? " (some needed SIGKILL)" : "");
    return 0;
}

int cmd_status(int argc, char **argv)
{
    const char *state = NULL;
    bool json = false;
    const arg_spec opts[] = {
        {"state", ARG_STR, &state, "DIR", "state folder (default $LEPTON_STATE, else "
                                          "~/.local/share/lepton)", 0, 0},
        {"json", ARG_FLAG, &json, NULL, "one JSON object instead of a table", 0, 0},
    };
    const arg_cmd cmd = {"status", "[--state DIR] [--json]",
                         "Report each service of `lepton up`: pid, port, health, restarts, "
                         "uptime, model. Exit 0 when all services are up, 3 otherwise.",
                         opts, 2, 0, 0};
    size_t npos = 0;
    int rc = args_parse(&cmd, argc, argv, NULL, &npos);
    if (rc)
        return rc == 1 ? 0 : rc;
    up_cfg c;
    memset(&c, 0, sizeof c);
    lp_err err;
    if (resolve_state(&c, state, false, &err))
        return cli_fail("status", &err);
    char upf[PATH_MAX], statf[PATH_MAX];
    path_of(upf, &c, "run", "up", ".pid");
    path_of(statf, &c, "run", "status", ".json");
    pid_t up = our_pid(upf);
    uint8_t *raw = NULL;
    size_t len = 0;
    cJSON *in = NULL;
    if (up && !lp_file_read(statf, &raw, &len, NULL))
        in = cJSON_Parse((const char *)raw);
    free(raw);
    const char *host = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(in, "host"));
    if (!host)
        host = "127.0.0.1";
    cJSON *out = cJSON_CreateObject();
    cJSON_AddStringToObject(out, "state", c.state);
    cJSON_AddBoolToObject(out, "running", up != 0);
    cJSON_AddNumberToObject(out, "pid", up);
    cJSON *arr = cJSON_AddArrayToObject(out, "services");
    int n_up = 0, n_svc = 0;
    const cJSON *kid;
    cJSON_ArrayForEach(kid, cJSON_GetObjectItemCaseSensitive(in, "children"))
    {
        const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(kid, "name"));
        const char *model = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(kid, "model"));
        bool console = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(kid, "console"));
        double port = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(kid, "port"));
        double pid = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(kid, "pid"));
        double started = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(kid, "started"));
        if (!name || port != port || pid != pid)
            continue;
        bool alive = pid > 0 && sv_alive((pid_t)pid);
        int code = 0;
        char body[1024];
        bool healthy = alive && !sv_http_get(host, (unsigned)port, "/healthz", 1000, &code, body,
                                             sizeof body, NULL) && code == 200;
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "name", name);
        cJSON_AddNumberToObject(o, "pid", alive ? pid : 0);
        cJSON_AddNumberToObject(o, "port", port);
        cJSON_AddStringToObject(o, "state", healthy ? "up" : "down");
        const char *sst = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(kid, "state"));
        cJSON_AddStringToObject(o, "supervisor_state", sst ? sst : "");
        cJSON_AddNumberToObject(o, "restarts", cJSON_GetNumberValue(
            cJSON_GetObjectItemCaseSensitive(kid, "restarts")));
        cJSON_AddNumberToObject(o, "uptime_s", alive ? lp_time_wall() - started : 0);
        char url[96];
        snprintf(url, sizeof url, "http://%s:%u/",
                 strcmp(host, "0.0.0.0") ? host : "127.0.0.1", (unsigned)port);
        cJSON_AddStringToObject(o, "url", url);
        cJSON_AddStringToObject(o, "health", healthy ? "ok" : alive ? "not answering" : "down");
        if (model && *model) {
            char hex[65];
            cJSON_AddStringToObject(o, "model", model);
            if (!lp_sha256_file(model, hex, NULL))
                cJSON_AddStringToObject(o, "model_sha256", hex);
            cJSON *v = NULL;
            if (healthy && !sv_http_get(host, (unsigned)port, "/version", 1000, &code, body,
                                        sizeof body, NULL) && code == 200)
                v = cJSON_Parse(body);
            const char *ver = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(v, "version"));
            if (ver)
                cJSON_AddStringToObject(o, "version", ver);
            cJSON_Delete(v);
        }
        const char *note = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(kid, "note"));
        if (note && *note)
            cJSON_AddStringToObject(o, "note", note);
        cJSON_AddItemToArray(arr, o);
        if (!console) {
            n_svc++;
            n_up += healthy;
        }
    }
    cJSON_AddNumberToObject(out, "up", n_up);
    if (json) {
        char *txt = cJSON_PrintUnformatted(out);
        if (txt)
            puts(txt);
        free(txt);
    } else if (!up) {
        printf("lepton up is not running on state folder %s\n", c.state);
    } else {
        printf("lepton up (pid %ld), state %s: %d of %d services up\n\n", (long)up, c.state, n_up,
               n_svc);
        printf("  %-17s %-8s %-6s %-5s %-9s %-9s %s\n", "service", "pid", "port", "state",
               "restarts", "uptime", "model (sha256)");
        const cJSON *o;
        cJSON_ArrayForEach(o, arr)
        {
            const char *sha = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o,
                                                                               "model_sha256"));
            const char *model = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "model"));
            char up_s[32], pid_s[24] = "-";
            double pid = cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "pid"));
            if (pid > 0)
                snprintf(pid_s, sizeof pid_s, "%.0f", pid);
            snprintf(up_s, sizeof up_s, "%.0f s",
                     cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "uptime_s")));
            printf("  %-17s %-8s %-6.0f %-5s %-9.0f %-9s %s%s%.12s%s\n",
                   cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "name")), pid_s,
                   cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "port")),
                   cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "state")),
                   cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, "restarts")), up_s,
                   model ? model : "-", sha ? " (" : "", sha ? sha : "", sha ? ")" : "");
        }
    }
    rc = up && n_svc && n_up == n_svc ? 0 : 3;
    cJSON_Delete(out);
    cJSON_Delete(in);
    return rc;
}

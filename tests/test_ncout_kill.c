/* test_ncout_kill.c — the dataset writer killed (SIGKILL) at random
 * instants: a child writes shuffled records of 4 runs and acknowledges each
 * flush through a pipe; the parent kills it, checks the file exactly as the
 * kill left it (it must open and hold correct values, possibly lagging the
 * journal), then catches up from the journal (ncout_repair, or the next
 * writer's open) and checks that every acknowledged step is there. Half the
 * kills with PATH updated at every flush (most instants inside HDF5
 * writes), half with the default budget and 1 ms steps.
 *   test_ncout_kill [KILLS]     (default 30) */
#include <signal.h>
#include "ncout_sample.h"

/* ---- kill -9 at random instants ---- */

#define KILL_STEPS 10000
#define KILL_CHILD_STEPS 300

static pid_t spawn_writer(const char *p, const Sample *s, int64_t from, double budget,
                          int *ack_rd, unsigned seed) {
    int fds[2];
    pid_t pid = pipe(fds) == 0 ? fork() : -1;
    if (pid < 0) { perror("kill test: pipe/fork"); exit(1); }
    if (pid == 0) {
        close(fds[0]);
        char err[1024];
        Ncout *o = ncout_open(p, &s->m, 0, err, sizeof err);
        if (!o) { fprintf(stderr, "kill-test child: %s\n", err); _exit(3); }
        ncout_set_budget(o, budget);
        int64_t to = from + KILL_CHILD_STEPS < KILL_STEPS ? from + KILL_CHILD_STEPS : KILL_STEPS;
        int rc = write_records(o, s, from, to, 10, seed, fds[1]);
        rc |= ncout_close(o, err, sizeof err);
        _exit(rc ? 4 : 0);
    }
    close(fds[1]);
    *ack_rd = fds[0];
    return pid;
}

static int64_t drain_acks(int fd, int64_t acked) {
    int64_t v;
    while (read(fd, &v, sizeof v) == sizeof v) if (v > acked) acked = v;
    close(fd);
    return acked;
}

typedef struct { int complete, lagging, damaged, garbage, unreadable, ended; } KillStats;

/* One kill: a writer resumes a little before the last flushed step (as
 * from a checkpoint) and is killed at a random instant of its life. */
static int64_t kill_once(const char *p, const Sample *s, double budget, double life, int64_t acked,
                         unsigned *seed, int it, KillStats *k) {
    int fd, status;
    char err[1024];
    int64_t from = acked > 15 ? acked - (int64_t)(rand_r(seed) % 16) : 0;
    pid_t pid = spawn_writer(p, s, from, budget, &fd, *seed + (unsigned)it);
    usleep((useconds_t)(1e6 * life * 1.2 * (rand_r(seed) % 1000) / 1000.0));
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
    if (WIFEXITED(status)) {
        k->ended++;
        CHECK(WEXITSTATUS(status) == 0, "kill-test writer failed (exit %d)", WEXITSTATUS(status));
    }
    acked = drain_acks(fd, acked);
    Want w;
    int v = verify_ex(p, s, acked, KILL_STEPS, 0, &w);     /* as the kill left it */
    if (getenv("NCOUT_TEST_VERBOSE"))
        printf("kill %d: from %lld, acked %lld, ended %d: open %d missing %d damaged %d wrong %d\n",
               it, (long long)from, (long long)acked, WIFEXITED(status), v >= 0, w.missing,
               w.damaged, w.wrong);
    if (v < 0) k->unreadable++;
    else if (w.damaged) k->damaged++;
    else if (w.wrong) {
        k->garbage++;
        if (getenv("NCOUT_TEST_VERBOSE")) verify_ex(p, s, acked, KILL_STEPS, 1, &w);
    }
    else if (w.missing) k->lagging++;
    else k->complete++;
    if (it % 2 == 1) {                   /* the other half: the next writer's open repairs */
        int repaired;
        CHECK(ncout_repair(p, &repaired, err, sizeof err) == 0, "repair after kill %d: %s", it,
              err);
        CHECK(closed_cleanly(p), "kill %d: cleanly closed after the catch-up", it);
        CHECK(verify(p, s, acked, KILL_STEPS, 1) == 0, "kill %d: every flushed step (%lld) after "
              "repair", it, (long long)acked);
    }
    return acked;
}

/* How long a writer of KILL_CHILD_STEPS steps lives, with this budget. */
static double writer_life(const char *p, const Sample *s, double budget) {
    int fd, status;
    double t0 = now_seconds();
    pid_t pid = spawn_writer(p, s, 0, budget, &fd, 1);
    waitpid(pid, &status, 0);
    drain_acks(fd, 0);
    return now_seconds() - t0;
}

static void test_kill(int kills) {
    Sample s;
    char p[512], err[1024];
    sample(&s, "small,big", KILL_STEPS, NULL);
    path_in(p, sizeof p, "kill.nc");
    /* 1: updates at every flush, no step time: most instants are inside an
     * update. 2: the default budget and 1 ms steps: mostly between updates,
     * with PATH lagging the journal. */
    const double budget[2] = {1.0, NCOUT_DEFAULT_BUDGET};
    const long step_us[2] = {0, 1000};
    double life[2];
    for (int ph = 0; ph < 2; ph++) {
        unlink(p);
        g_step_us = step_us[ph];
        life[ph] = writer_life(p, &s, budget[ph]);
    }
    unlink(p);
    int64_t acked = 0;
    unsigned seed = 12345;
    KillStats ks[2] = {{0}};
    for (int it = 0; it < kills; it++) {
        int ph = it >= kills / 2;
        g_step_us = step_us[ph];
        acked = kill_once(p, &s, budget[ph], life[ph], acked, &seed, it, &ks[ph]);
    }
    g_step_us = 0;
    int repaired;
    CHECK(ncout_repair(p, &repaired, err, sizeof err) == 0, "final repair: %s", err);
    CHECK(verify(p, &s, acked, KILL_STEPS, 1) == 0, "after %d kills: every flushed step", kills);
    Ncout *o = ncout_open(p, &s.m, 0, err, sizeof err);
    CHECK(o && write_records(o, &s, acked > 5 ? acked - 5 : 0, KILL_STEPS, 10, 9, -1) == 0 &&
          ncout_close(o, err, sizeof err) == 0, "finish the run: %s", err);
    CHECK(verify(p, &s, KILL_STEPS, KILL_STEPS, 1) == 0,
          "complete after the kills: each step once");
    for (int ph = 0; ph < 2; ph++) {
        const KillStats *k = &ks[ph];
        printf("kill -9 x %d, budget %g, step %ld us (writer life %.0f ms; %d finished before the "
               "kill): the .nc as left: complete %d, lagging the journal %d, opens but damaged %d, "
               "does not open %d, wrong values %d; after catch-up: every flushed step every time\n",
               ph ? kills - kills / 2 : kills / 2, budget[ph], step_us[ph], life[ph] * 1e3,
               k->ended, k->complete, k->lagging, k->damaged, k->unreadable, k->garbage);
        CHECK(k->damaged + k->unreadable + k->garbage == 0,
              "a kill never leaves the .nc damaged, unreadable or wrong");
    }
}

int main(int argc, char **argv) {
    snprintf(g_dir, sizeof g_dir, "/tmp/test_ncout_kill.XXXXXX");
    if (!mkdtemp(g_dir)) { perror("mkdtemp"); return 1; }
    test_kill(argc > 1 ? atoi(argv[1]) : 30);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (!check_failures && system(cmd) != 0) fprintf(stderr, "could not remove %s\n", g_dir);
    return test_done("test_ncout_kill");
}

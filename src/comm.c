/* comm.c — the one file that calls MPI. */
#include "comm.h"
#include <mpi.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "util.h"

static void abort_job(int code) {
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (initialized && !finalized) MPI_Abort(MPI_COMM_WORLD, code);
}

void comm_init(int *argc, char ***argv) {
    MPI_Init(argc, argv);
    /* one rank's fatal error ends the whole job, not a hang in a collective */
    if (comm_world_size() > 1) set_die_hook(abort_job);
}

void comm_finalize(void) {
    comm_drain_sends();
    MPI_Finalize();
}

int comm_world_rank(void) { int r; MPI_Comm_rank(MPI_COMM_WORLD, &r); return r; }
int comm_world_size(void) { int s; MPI_Comm_size(MPI_COMM_WORLD, &s); return s; }
void comm_abort(int code) { abort_job(code); exit(code); }

static MPI_Comm group_comm(Comm *c) { return *(MPI_Comm *)c->handle; }

void comm_split(Comm *c, int group, int key) {
    memset(c, 0, sizeof *c);
    c->world_rank = comm_world_rank();
    c->world_size = comm_world_size();
    c->group = group;
    c->handle = xmalloc(sizeof(MPI_Comm));
    MPI_Comm_split(MPI_COMM_WORLD, group, key, (MPI_Comm *)c->handle);
    MPI_Comm_rank(group_comm(c), &c->rank);
    MPI_Comm_size(group_comm(c), &c->size);
}

void comm_free(Comm *c) {
    if (c->handle) MPI_Comm_free((MPI_Comm *)c->handle);
    free(c->handle);
    c->handle = NULL;
}

/* MPI counts are int: reduce large buffers in pieces. */
static void allreduce(Comm *c, void *buf, size_t n, MPI_Datatype type, size_t esize, MPI_Op op) {
    if (c->size == 1) return;
    const size_t piece = (size_t)1 << 30;
    for (size_t off = 0; off < n; off += piece) {
        size_t cnt = n - off < piece ? n - off : piece;
        MPI_Allreduce(MPI_IN_PLACE, (char *)buf + off * esize, (int)cnt, type, op, group_comm(c));
    }
}

void comm_allreduce_sum_f32(Comm *c, float *b, size_t n) { allreduce(c, b, n, MPI_FLOAT, 4, MPI_SUM); }
void comm_allreduce_sum_i64(Comm *c, int64_t *b, size_t n) { allreduce(c, b, n, MPI_INT64_T, 8, MPI_SUM); }
void comm_allreduce_sum_f64(Comm *c, double *b, size_t n) { allreduce(c, b, n, MPI_DOUBLE, 8, MPI_SUM); }
void comm_allreduce_max_f32(Comm *c, float *b, size_t n) { allreduce(c, b, n, MPI_FLOAT, 4, MPI_MAX); }

void comm_allgatherv_f64(Comm *c, const double *mine, int n_mine, double *all, const int *counts) {
    if (c->size == 1) { memcpy(all, mine, (size_t)n_mine * sizeof *mine); return; }
    int *displs = xmalloc((size_t)c->size * sizeof *displs);
    for (int r = 0, off = 0; r < c->size; r++) { displs[r] = off; off += counts[r]; }
    MPI_Allgatherv(mine, n_mine, MPI_DOUBLE, all, counts, displs, MPI_DOUBLE, group_comm(c));
    free(displs);
}

void comm_bcast(Comm *c, void *buf, size_t bytes, int root) {
    if (c->size > 1) MPI_Bcast(buf, (int)bytes, MPI_BYTE, root, group_comm(c));
}

int comm_all_equal_u32(Comm *c, uint32_t value) {
    if (c->size == 1) return 1;
    unsigned int mn = value, mx = value;
    MPI_Allreduce(MPI_IN_PLACE, &mn, 1, MPI_UNSIGNED, MPI_MIN, group_comm(c));
    MPI_Allreduce(MPI_IN_PLACE, &mx, 1, MPI_UNSIGNED, MPI_MAX, group_comm(c));
    return mn == mx;
}

int comm_group_any(Comm *c, int flag) {
    int out = flag;
    if (c->size > 1) MPI_Allreduce(&flag, &out, 1, MPI_INT, MPI_LOR, group_comm(c));
    return out;
}

int comm_world_any(int flag) {
    int out = flag;
    if (comm_world_size() > 1) MPI_Allreduce(&flag, &out, 1, MPI_INT, MPI_LOR, MPI_COMM_WORLD);
    return out;
}

void comm_world_barrier(void) { MPI_Barrier(MPI_COMM_WORLD); }

void comm_world_barrier_idle(void) {
    MPI_Request req;
    MPI_Ibarrier(MPI_COMM_WORLD, &req);
    struct timespec nap = {0, 100000};   /* 100 µs */
    for (int done = 0;;) {
        MPI_Test(&req, &done, MPI_STATUS_IGNORE);
        if (done) return;
        nanosleep(&nap, NULL);
    }
}

/* Outstanding asynchronous sends: each keeps its buffer until complete. */
typedef struct { MPI_Request req; void *buf; } PendingSend;
static PendingSend *pending = NULL;
static int n_pending = 0, cap_pending = 0;

static void reap_sends(void) {
    int kept = 0;
    for (int i = 0; i < n_pending; i++) {
        int done = 0;
        MPI_Test(&pending[i].req, &done, MPI_STATUS_IGNORE);
        if (done) free(pending[i].buf);
        else pending[kept++] = pending[i];
    }
    n_pending = kept;
}

static int msg_count(size_t bytes) {
    if (bytes > (size_t)2147483647) die("a message of %zu bytes is beyond MPI's int count", bytes);
    return (int)bytes;
}

void comm_send_async(int dest, int tag, const void *buf, size_t bytes) {
    reap_sends();
    if (n_pending == cap_pending) {
        cap_pending = cap_pending ? 2 * cap_pending : 16;
        pending = realloc(pending, (size_t)cap_pending * sizeof *pending);
        if (!pending) die("out of memory queueing messages");
    }
    PendingSend *p = &pending[n_pending++];
    p->buf = xmalloc(bytes ? bytes : 1);
    if (bytes) memcpy(p->buf, buf, bytes);
    MPI_Isend(p->buf, msg_count(bytes), MPI_BYTE, dest, tag, MPI_COMM_WORLD, &p->req);
}

void comm_send(int dest, int tag, const void *buf, size_t bytes) {
    MPI_Send(buf, msg_count(bytes), MPI_BYTE, dest, tag, MPI_COMM_WORLD);
}

int comm_recv_any(int block, int *tag, int *source, void **buf, size_t *bytes) {
    MPI_Status st;
    int flag = 1;
    if (block) MPI_Probe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &st);
    else MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &st);
    if (!flag) return 0;
    int count;
    MPI_Get_count(&st, MPI_BYTE, &count);
    *buf = xmalloc(count > 0 ? (size_t)count : 1);
    MPI_Recv(*buf, count, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    *tag = st.MPI_TAG;
    *source = st.MPI_SOURCE;
    *bytes = (size_t)count;
    return 1;
}

void comm_recv_from(int source, int tag, void *buf, size_t bytes) {
    MPI_Recv(buf, msg_count(bytes), MPI_BYTE, source, tag, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
}

void comm_drain_sends(void) {
    for (int i = 0; i < n_pending; i++) {
        MPI_Wait(&pending[i].req, MPI_STATUS_IGNORE);
        free(pending[i].buf);
    }
    n_pending = 0;
}

/* ---- BLACS system handle (spectrum.c builds its ScaLAPACK grid on it) ----
 * Csys2blacs_handle takes the group's MPI_Comm, so it lives here; the
 * include sits with the one function that needs it. */
#include "scalapack.h"

int comm_blacs_handle(Comm *c) { return Csys2blacs_handle(group_comm(c)); }

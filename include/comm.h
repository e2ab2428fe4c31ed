/* comm.h — every MPI call of the program lives in comm.c (CoMD habit).
 * Model, data and metrics code never call MPI; the trainer calls these.
 *
 * A job's ranks are split once into groups; each group trains its queue of
 * runs one after another, data-parallel over the group's ranks. Job rank 0
 * writes the dataset: run leaders ship their records to it as tagged byte
 * messages (sink.c owns the tags and what the bytes mean). */
#ifndef RELUSCOPE_COMM_H
#define RELUSCOPE_COMM_H
#include <stddef.h>
#include <stdint.h>

typedef struct {
    int world_rank, world_size;
    int rank, size;          /* within this rank's group (its runs' replicas) */
    int group;               /* index of the group */
    void *handle;            /* the group's MPI communicator (comm.c only) */
} Comm;

void comm_init(int *argc, char ***argv);
void comm_finalize(void);
int  comm_world_rank(void);
int  comm_world_size(void);
void comm_abort(int code);

/* Split the job into groups (collective over the job). */
void comm_split(Comm *c, int group, int key);
void comm_free(Comm *c);

/* Collectives over the group. */
void comm_allreduce_sum_f32(Comm *c, float *buf, size_t n);
void comm_allreduce_sum_i64(Comm *c, int64_t *buf, size_t n);
void comm_allreduce_sum_f64(Comm *c, double *buf, size_t n);
void comm_allreduce_max_f32(Comm *c, float *buf, size_t n);
/* counts[r] doubles from each rank, concatenated in rank order on all. */
void comm_allgatherv_f64(Comm *c, const double *mine, int n_mine, double *all, const int *counts);
void comm_bcast(Comm *c, void *buf, size_t bytes, int root);
/* 1 if every rank of the group passed the same value. */
int  comm_all_equal_u32(Comm *c, uint32_t value);
/* Logical OR of a flag over the group (e.g. "a stop signal arrived"). */
int  comm_group_any(Comm *c, int flag);
/* Logical OR of a flag over the whole job (e.g. "a stop signal arrived"). */
int  comm_world_any(int flag);
void comm_world_barrier(void);
/* The same, sleeping while it waits instead of spinning (Open MPI's blocking
 * calls poll): a rank with nothing to do leaves its core idle. */
void comm_world_barrier_idle(void);

/* Point-to-point byte messages between job ranks (MPI_COMM_WORLD); the
 * tag is the caller's. Messages of one sender and tag arrive in order. */
/* Non-blocking: buf is copied, the send completes in the background. */
void comm_send_async(int dest, int tag, const void *buf, size_t bytes);
/* Blocking send (small messages). */
void comm_send(int dest, int tag, const void *buf, size_t bytes);
/* One pending message from any rank with any tag, if there is one (block:
 * wait for one). 1 with *buf malloc'd (caller frees), 0 if none. */
int  comm_recv_any(int block, int *tag, int *source, void **buf, size_t *bytes);
/* Wait for the message of `bytes` bytes with this tag from source. */
void comm_recv_from(int source, int tag, void *buf, size_t bytes);
/* Complete every outstanding comm_send_async (before exit). */
void comm_drain_sends(void);

/* The BLACS system handle of the group's communicator (collective-free; any
 * rank may call it). Cblacs_gridinit turns it into a process grid; release
 * it with Cfree_blacs_system_handle (scalapack.h) after Cblacs_gridexit. */
int  comm_blacs_handle(Comm *c);

#endif

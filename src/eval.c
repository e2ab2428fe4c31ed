/* eval.c — held-out evaluation (training time) and the `eval` command. */
#include "eval.h"
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include "checkpoint.h"
#include "selectivity.h"
#include "cli.h"
#include "data.h"
#include "sink.h"
#include "spectrum.h"
#include "util.h"

void build_heldout(Heldout *h, const Config *c, const ModelSize *s, Comm *comm) {
    char err[1024];
    memset(h, 0, sizeof *h);
    h->T = s->T;
    if (c->eval_every <= 0 || c->val_data[0] == '\0') return;
    h->n_seq = (int)(c->eval_tokens / s->T);
    TokenSet ts;
    if (tokenset_open(&ts, c->val_data, s->V, err, sizeof err) != 0) die("%s", err);
    if (heldout_check(&ts, s->T, h->n_seq, err, sizeof err) != 0) die("%s", err);
    uint16_t *all = xmalloc((size_t)h->n_seq * (s->T + 1) * sizeof *all);
    if (heldout_fill(&ts, s->T, h->n_seq, all, err, sizeof err) != 0) die("%s", err);
    tokenset_close(&ts);
    h->counts = xmalloc((size_t)comm->size * sizeof *h->counts);
    for (int r = 0; r < comm->size; r++) {
        int lo = (int)((int64_t)h->n_seq * r / comm->size);
        int hi = (int)((int64_t)h->n_seq * (r + 1) / comm->size);
        h->counts[r] = hi - lo;
        if (r == comm->rank) { h->first = lo; h->count = hi - lo; }
    }
    h->topk = c->spectrum_topk < s->F ? c->spectrum_topk : s->F;
    h->spectrum = build_spectrum(comm, s->F, h->topk);
    h->rows = xmalloc(((size_t)s->L * h->count * s->T + 1) * s->F * sizeof *h->rows);
    h->tokens = xmalloc(((size_t)h->count + 1) * (s->T + 1) * sizeof *h->tokens);
    memcpy(h->tokens, all + (size_t)h->first * (s->T + 1),
           (size_t)h->count * (s->T + 1) * sizeof *all);
    free(all);
}

void free_heldout(Heldout *h) {
    if (h->spectrum) free_spectrum(h->spectrum);
    free(h->rows);
    free(h->tokens);
    free(h->counts);
    memset(h, 0, sizeof *h);
}

/* The input ids of nb windows [nb][T+1] against every layer's activations. */
static void selectivity_add_chunk(Selectivity *sel, const Model *m, const uint16_t *windows,
                                  int nb) {
    int T = m->cfg.T;
    for (int b = 0; b < nb; b++) {
        const uint16_t *ids = windows + (size_t)b * (T + 1);
        selectivity_add_ids(sel, ids, (size_t)T);
        for (int l = 0; l < m->cfg.L; l++)
            selectivity_add(sel, l, model_layer_h(m, l) + (size_t)b * T * m->cfg.F, ids,
                            (size_t)T);
    }
}

void evaluate_tokens(Model *m, Comm *comm, const uint16_t *tokens, int count,
                     const int *counts, int n_seq_total, EvalRecord *rec, float *rows,
                     Selectivity *sel) {
    int L = m->cfg.L, F = m->cfg.F, T = m->cfg.T;
    size_t layer_rows = (size_t)count * T;
    size_t n_usage = (size_t)L * usage_stride(F);
    int64_t *usage = xcalloc(n_usage, sizeof *usage);
    double *loss_mine = xmalloc(((size_t)count + 1) * sizeof *loss_mine);
    double *loss_all = xmalloc(((size_t)n_seq_total + 1) * sizeof *loss_all);
    int keep_h = m->keep_h;
    m->keep_h = 1;   /* the spectra and the selectivity read every layer's H: dense path */
    for (int done = 0; done < count; done += m->B) {
        int nb = count - done < m->B ? count - done : m->B;
        model_forward(m, tokens + (size_t)done * (T + 1), nb, usage, NULL, NULL);
        for (int b = 0; b < nb; b++) loss_mine[done + b] = model_sequence_loss(m, b);
        for (int l = 0; rows && l < L; l++)   /* keep the activations for the spectra */
            memcpy(rows + (l * layer_rows + (size_t)done * T) * F, model_layer_h(m, l),
                   (size_t)nb * T * F * sizeof *rows);
        if (sel) selectivity_add_chunk(sel, m, tokens + (size_t)done * (T + 1), nb);
    }
    m->keep_h = keep_h;
    comm_allreduce_sum_i64(comm, usage, n_usage);
    comm_allgatherv_f64(comm, loss_mine, count, loss_all, counts);
    double sum = 0.0;   /* in sequence order: the same bits for any rank count */
    for (int b = 0; b < n_seq_total; b++) sum += loss_all[b];
    rec->L = L;
    rec->tokens = (int64_t)n_seq_total * T;
    rec->loss = n_seq_total > 0 ? sum / ((double)n_seq_total * T) : 0.0;
    for (int l = 0; l < L; l++) {
        UsageCounts u = usage_view(usage, l, F);
        memset(&rec->layers[l], 0, sizeof rec->layers[l]);
        usage_summarize(&u, F, &rec->layers[l]);
    }
    free(usage); free(loss_mine); free(loss_all);
}

/* Spectra of every layer's centred activations, and the weights' stable ranks. */
static void layer_spectra(Heldout *h, const Model *m, EvalRecord *rec, double *sv) {
    const ModelSize *c = &m->cfg;
    size_t layer_floats = (size_t)h->count * c->T * c->F;
    for (int l = 0; l < c->L; l++) {
        SpectrumStats st;
        spectrum_layer(h->spectrum, h->rows + l * layer_floats, h->count * c->T,
                       sv + (size_t)l * h->topk, &st);
        rec->eff_rank[l] = st.eff_rank;
        rec->participation[l] = st.participation;
        rec->stable_rank_fc[l] = stable_rank(m->params.fcw + (size_t)l * c->d * c->F, c->d, c->F);
        rec->stable_rank_proj[l] =
            stable_rank(m->params.fcprojw + (size_t)l * c->F * c->d, c->F, c->d);
    }
}

void run_heldout_eval(Heldout *h, Model *m, Comm *comm, int run, int64_t step) {
    if (h->n_seq == 0) return;
    EvalRecord rec;
    memset(&rec, 0, sizeof rec);
    rec.run = run;
    rec.step = step;
    evaluate_tokens(m, comm, h->tokens, h->count, h->counts, h->n_seq, &rec, h->rows, NULL);
    double *sv = xcalloc((size_t)m->cfg.L * h->topk, sizeof *sv);
    layer_spectra(h, m, &rec, sv);
    rec.topk = h->topk;
    rec.singular_values = sv;
    if (comm->rank == 0) sink_eval(&rec);
    free(sv);
}

/* ---- the `eval` command ---- */

static void eval_usage(FILE *fp) {
    fprintf(fp,
        "usage: reluscope eval --checkpoint FILE --tokens SHARD [--max-tokens N] [--json]\n"
        "                      [--selectivity]\n"
        "Cuts SHARD into consecutive windows of T+1 tokens (stride T, so every token\n"
        "after the first is predicted once) and prints the mean loss and, per layer,\n"
        "token_use mean, seq_use mean and batch_use over those tokens (SPEC §3).\n"
        "  --max-tokens N  only the first N/T windows (N a multiple of T): with\n"
        "           N = eval_tokens these are exactly training's held-out batch\n"
        "  --json   one JSON object: {\"loss\", \"finite\", \"tokens\", \"vocab\",\n"
        "           \"layers\": [...]};\n"
        "           a value that is not finite prints as null, \"finite\" is false and\n"
        "           the exit code is 1 (JSON has no nan)\n"
        "  --selectivity  also, per layer, how many distinct input token ids each unit\n"
        "           fires for, as a share of the ids present (quantiles over the units\n"
        "           that fire), and the shares of specialist (<= 1%% of the ids) and\n"
        "           generalist (>= 50%%) units; one process only\n");
}

static void print_selectivity(const Selectivity *sel, int json) {
    for (int l = 0; l < sel->L; l++) {
        SelectivityStats st;
        selectivity_stats(sel, l, &st);
        if (!json) {
            if (l == 0) printf("layer  ids_present  units_firing  ids/unit q10 q25 q50 q75 q90"
                               "  specialist  generalist\n");
            printf("%5d  %11d  %12d  %.4f %.4f %.4f %.4f %.4f  %10.4f  %10.4f\n", l,
                   st.ids_present, st.units_firing, st.ids_q[0], st.ids_q[1], st.ids_q[2],
                   st.ids_q[3], st.ids_q[4], st.specialist_frac, st.generalist_frac);
            continue;
        }
        printf("%s{\"ids_present\": %d, \"units_firing\": %d, \"ids_per_unit_q\": [",
               l ? ", " : "", st.ids_present, st.units_firing);
        for (int q = 0; q < SELECTIVITY_NQ; q++) printf("%s%.17g", q ? ", " : "", st.ids_q[q]);
        printf("], \"specialist_frac\": %.17g, \"generalist_frac\": %.17g}",
               st.specialist_frac, st.generalist_frac);
    }
}

/* A JSON number, or null where the value is not finite (JSON has no nan or
 * inf): the object then says "finite": false and the command exits 1. */
static void json_num(const char *key, double v, const char *sep) {
    if (isfinite(v)) printf("%s\"%s\": %.17g", sep, key, v);
    else printf("%s\"%s\": null", sep, key);
}

static int record_finite(const EvalRecord *rec) {
    int ok = isfinite(rec->loss);
    for (int l = 0; l < rec->L; l++)
        ok = ok && isfinite(rec->layers[l].token_use_mean) &&
             isfinite(rec->layers[l].seq_use_mean) && isfinite(rec->layers[l].batch_use);
    return ok;
}

static void print_eval(const EvalRecord *rec, int vocab, int json, const Selectivity *sel) {
    if (!json) {
        printf("loss %.6f over %lld tokens\n", rec->loss, (long long)rec->tokens);
        printf("layer  token_use_mean  seq_use_mean  batch_use\n");
        for (int l = 0; l < rec->L; l++)
            printf("%5d  %14.6f  %12.6f  %9.6f\n", l, rec->layers[l].token_use_mean,
                   rec->layers[l].seq_use_mean, rec->layers[l].batch_use);
        if (sel) print_selectivity(sel, 0);
        return;
    }
    printf("{");
    json_num("loss", rec->loss, "");
    printf(", \"finite\": %s, \"tokens\": %lld, \"vocab\": %d, \"layers\": [",
           record_finite(rec) ? "true" : "false", (long long)rec->tokens, vocab);
    for (int l = 0; l < rec->L; l++) {
        printf("%s{", l ? ", " : "");
        json_num("token_use_mean", rec->layers[l].token_use_mean, "");
        json_num("seq_use_mean", rec->layers[l].seq_use_mean, ", ");
        json_num("batch_use", rec->layers[l].batch_use, ", ");
        printf("}");
    }
    printf("]");
    if (sel) {
        printf(", \"selectivity\": [");
        print_selectivity(sel, 1);
        printf("]");
    }
    printf("}\n");
}

/* Load the model of a checkpoint (any optimizer state is read and dropped). */
void eval_load_model(const char *path, Model *m, int B) {
    char err[1024];
    ModelSize ms;
    uint64_t seed;
    int64_t step;
    if (checkpoint_peek(path, &ms, &seed, &step, err, sizeof err) != 0) die("%s", err);
    build_model(m, &ms, B);
    Optimizer opt;
    build_optimizer(&opt, OPT_ADAMW, m->num_params);
    RunState rs = {0};
    rs.trackers = xcalloc((size_t)ms.L, sizeof(DeathTracker));
    for (int l = 0; l < ms.L; l++) build_death_tracker(&rs.trackers[l], ms.F, 1);
    if (checkpoint_load(path, &ms, NULL, m, &opt, &rs, err, sizeof err) != 0) die("%s", err);
    for (int l = 0; l < ms.L; l++) free_death_tracker(&rs.trackers[l]);
    free(rs.trackers);
    free_optimizer(&opt);
}

int cmd_eval(int argc, char **argv) {
    const char *ckpt = NULL, *shard = NULL;
    int json = 0, want_sel = 0;
    int64_t max_tokens = 0;   /* 0: every window of the shard */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) { eval_usage(stdout); return 0; }
        else if (!strcmp(argv[i], "--json")) json = 1;
        else if (!strcmp(argv[i], "--selectivity")) want_sel = 1;
        else if (!strcmp(argv[i], "--checkpoint") && i + 1 < argc) ckpt = argv[++i];
        else if (!strcmp(argv[i], "--tokens") && i + 1 < argc) shard = argv[++i];
        else if (!strcmp(argv[i], "--max-tokens") && i + 1 < argc) {
            if (parse_i64(argv[++i], &max_tokens) != 0 || max_tokens < 1)
                die("eval: --max-tokens '%s': not a positive integer", argv[i]);
        }
        else die("eval: unknown or incomplete argument '%s' (see reluscope eval --help)", argv[i]);
    }
    if (!ckpt || !shard) die("eval: --checkpoint FILE and --tokens SHARD are required");
    Comm comm;
    comm_split(&comm, 0, comm_world_rank());
    if (want_sel && comm.size > 1) die("eval: --selectivity runs in one process (no mpirun)");
    ModelSize ms;
    char why[512];
    if (checkpoint_peek(ckpt, &ms, NULL, NULL, why, sizeof why) != 0) die("%s", why);
    /* ulimit -v too small: OpenBLAS would spin in its allocator (train.c does the same) */
    double N = 8.0 * ms.T, floats = 4.0 * (double)param_total(&ms) +
                                    N * (ms.L * (10.0 * ms.d + 3.0 * ms.F) + 3.0 * ms.d + ms.V);
    if (address_space_check(4 * floats + 160.0 * 1024 * 1024, why, sizeof why) != 0)
        die("eval: %s", why);
    Model m;
    eval_load_model(ckpt, &m, 8);
    int T = m.cfg.T;
    char err[1024];
    TokenSet ts;
    if (tokenset_open(&ts, shard, m.cfg.V, err, sizeof err) != 0) die("%s", err);
    int64_t n64 = tokenset_windows(&ts, T);
    if (n64 < 1) die("%s: fewer than T+1 = %d tokens", shard, T + 1);
    if (n64 > (1 << 30)) die("%s: too many windows for one evaluation", shard);
    if (max_tokens > 0) {
        if (max_tokens % T != 0)
            die("eval: --max-tokens %lld is not a multiple of T = %d", (long long)max_tokens, T);
        if (max_tokens / T > n64)
            die("eval: --max-tokens %lld: %s holds only %lld windows of T+1 = %d tokens",
                (long long)max_tokens, shard, (long long)n64, T + 1);
        n64 = max_tokens / T;
    }
    int n = (int)n64;
    uint16_t *all = xmalloc((size_t)n * (T + 1) * sizeof *all);
    if (heldout_fill(&ts, T, n, all, err, sizeof err) != 0) die("%s", err);
    tokenset_close(&ts);
    int *counts = xmalloc((size_t)comm.size * sizeof *counts), first = 0;
    for (int r = 0; r < comm.size; r++) {
        int lo = (int)((int64_t)n * r / comm.size), hi = (int)((int64_t)n * (r + 1) / comm.size);
        counts[r] = hi - lo;
        if (r == comm.rank) first = lo;
    }
    EvalRecord rec;
    memset(&rec, 0, sizeof rec);
    Selectivity sel = {0};
    if (want_sel) build_selectivity(&sel, m.cfg.L, m.cfg.F, m.cfg.V);
    evaluate_tokens(&m, &comm, all + (size_t)first * (T + 1), counts[comm.rank], counts, n, &rec,
                    NULL, want_sel ? &sel : NULL);
    int finite = record_finite(&rec);
    if (comm.rank == 0) {
        print_eval(&rec, m.cfg.V, json, want_sel ? &sel : NULL);
        fflush(stdout);
        if (!finite)
            fprintf(stderr, "reluscope: error: %s: the loss or a metric is not finite on %s "
                    "(loss %g): the weights overflow\n", ckpt, shard, rec.loss);
    }
    if (want_sel) free_selectivity(&sel);
    free(all); free(counts);
    free_model(&m);
    comm_free(&comm);
    return finite ? 0 : 1;
}

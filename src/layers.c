/* layers.c — forward/backward pairs of the transformer's layers (attention
 * is in attention.c). Backward functions accumulate (+=) into parameter
 * gradients; the activation gradients of matmul and attention are written.
 * `#pragma omp simd` (with -fopenmp-simd: no threads) lets GCC vectorize the
 * reductions of LayerNorm and the softmaxes, whose order it may not change
 * on its own without -ffast-math; every rank runs the same code on the same
 * rows, so results stay identical across rank counts. */
#include "layers.h"
#include <cblas.h>
#include <math.h>
#include <string.h>
#include "vecmath.h"

void encoder_forward(float *out, const uint16_t *tokens, int row_stride,
                     const float *wte, const float *wpe, int B, int T, int C) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *o = out + ((size_t)b * T + t) * C;
            const float *we = wte + (size_t)tokens[(size_t)b * row_stride + t] * C;
            if (!wpe) { memcpy(o, we, (size_t)C * sizeof *o); continue; }
            const float *wp = wpe + (size_t)t * C;
            for (int c = 0; c < C; c++) o[c] = we[c] + wp[c];
        }
}

void encoder_backward(float *dwte, float *dwpe, const float *dout,
                      const uint16_t *tokens, int row_stride, int B, int T, int C) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            const float *d = dout + ((size_t)b * T + t) * C;
            float *we = dwte + (size_t)tokens[(size_t)b * row_stride + t] * C;
            if (!dwpe) {
                for (int c = 0; c < C; c++) we[c] += d[c];
                continue;
            }
            float *wp = dwpe + (size_t)t * C;
            for (int c = 0; c < C; c++) { we[c] += d[c]; wp[c] += d[c]; }
        }
}

void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *w, const float *b, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C;
        float *o = out + (size_t)n * C;
        float m = 0.0f;
        #pragma omp simd reduction(+:m)
        for (int c = 0; c < C; c++) m += x[c];
        m /= C;
        float v = 0.0f;
        #pragma omp simd reduction(+:v)
        for (int c = 0; c < C; c++) { float dx = x[c] - m; v += dx * dx; }
        float s = 1.0f / sqrtf(v / C + 1e-5f);
        #pragma omp simd
        for (int c = 0; c < C; c++) o[c] = (x[c] - m) * s * w[c] + b[c];
        mean[n] = m;
        rstd[n] = s;
    }
}

void layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                        const float *inp, const float *w, const float *mean,
                        const float *rstd, int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *x = inp + (size_t)n * C, *dy = dout + (size_t)n * C;
        float *dx = dinp + (size_t)n * C;
        float m = mean[n], s = rstd[n];
        /* dxhat = dy * w; dx = s * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)) */
        float sum_dxhat = 0.0f, sum_dxhat_xhat = 0.0f;
        #pragma omp simd reduction(+:sum_dxhat, sum_dxhat_xhat)
        for (int c = 0; c < C; c++) {
            float xhat = (x[c] - m) * s, dxhat = dy[c] * w[c];
            sum_dxhat += dxhat;
            sum_dxhat_xhat += dxhat * xhat;
        }
        sum_dxhat /= C;
        sum_dxhat_xhat /= C;
        #pragma omp simd
        for (int c = 0; c < C; c++) {
            float xhat = (x[c] - m) * s;
            db[c] += dy[c];
            dw[c] += dy[c] * xhat;
            dx[c] += s * (dy[c] * w[c] - sum_dxhat - xhat * sum_dxhat_xhat);
        }
    }
}

void matmul_forward(float *out, const float *inp, const float *w, const float *bias,
                    int N, int IC, int OC) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, OC, IC,
                1.0f, inp, IC, w, OC, 0.0f, out, OC);
    if (!bias) return;
    for (int n = 0; n < N; n++) {
        float *o = out + (size_t)n * OC;
        for (int c = 0; c < OC; c++) o[c] += bias[c];
    }
}

/* Why one sgemm per sequence: a BLAS may compute the last (M mod unroll)
 * rows of a call with another micro-kernel and another rounding (OpenBLAS
 * 0.3.21's Haswell sgemm does, for the last 4-8 rows of M), so in one call
 * over a rank's rows a row's bits would depend on where the rank's slice
 * ends. Per sequence, every replica computes a sequence exactly alike, and
 * the step-0 metrics are the same for any rank count (SPEC §4, t_mpi). It
 * costs nothing measurable: at the study geometry (T = 64, 128 sequences)
 * 128 calls took 0.8-1.04x the time of one (single thread, Haswell and
 * SkylakeX kernels, 2026-12-01). */
void matmul_forward_seq(float *out, const float *inp, const float *w, const float *bias,
                        int B, int T, int IC, int OC) {
    for (int b = 0; b < B; b++)
        matmul_forward(out + (size_t)b * T * OC, inp + (size_t)b * T * IC, w, bias, T, IC, OC);
}

void matmul_forward_seq_t(float *out, const float *inp, const float *wt, int B, int T,
                          int IC, int OC) {
    for (int b = 0; b < B; b++)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, T, OC, IC, 1.0f,
                    inp + (size_t)b * T * IC, IC, wt, IC, 0.0f, out + (size_t)b * T * OC, OC);
}

void matmul_backward(float *dinp, float *dw, float *dbias, const float *dout,
                     const float *inp, const float *w, int N, int IC, int OC) {
    if (dinp)   /* overwritten (beta = 0): no zeroing pass over [N][IC] first */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, IC, OC,
                    1.0f, dout, OC, w, OC, 0.0f, dinp, IC);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, IC, OC, N,
                1.0f, inp, IC, dout, OC, 1.0f, dw, OC);
    if (!dbias) return;
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * OC;
        for (int c = 0; c < OC; c++) dbias[c] += d[c];
    }
}

void residual_forward(float *out, const float *a, const float *b, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] + b[i];
}

void crossentropy_forward(float *logits_to_probs, float *losses,
                          const uint16_t *targets, int row_stride, int B, int T, int V) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            size_t n = (size_t)b * T + t;
            float *row = logits_to_probs + n * V;
            int target = targets[(size_t)b * row_stride + t];
            float mx = -INFINITY, target_logit = row[target];
            #pragma omp simd reduction(max:mx)
            for (int v = 0; v < V; v++) mx = row[v] > mx ? row[v] : mx;
            float sum = 0.0f;
            #pragma omp simd reduction(+:sum)
            for (int v = 0; v < V; v++) { row[v] = exp_softmax(row[v] - mx); sum += row[v]; }
            float inv = 1.0f / sum;
            #pragma omp simd
            for (int v = 0; v < V; v++) row[v] *= inv;
            /* -log softmax from the logits: exact even where p underflows */
            losses[n] = logf(sum) - (target_logit - mx);
        }
}

void crossentropy_backward(float *probs_to_dlogits, const uint16_t *targets,
                           int row_stride, int B, int T, int V, float scale) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *row = probs_to_dlogits + ((size_t)b * T + t) * V;
            for (int v = 0; v < V; v++) row[v] *= scale;
            row[targets[(size_t)b * row_stride + t]] -= scale;
        }
}

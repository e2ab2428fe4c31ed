/* layers.c — forward/backward pairs of the transformer's layers.
 * Backward functions accumulate (+=) into gradients, never overwrite.
 * `#pragma omp simd` (with -fopenmp-simd: no threads) lets GCC vectorize the
 * reductions of LayerNorm and the softmaxes, whose order it may not change
 * on its own without -ffast-math; every rank runs the same code on the same
 * rows, so results stay identical across rank counts. */
#include "layers.h"
#include <cblas.h>
#include <math.h>
#include <string.h>
#include "vecmath.h"

#define ATT_BLOCK 64   /* row block of the causal attention GEMMs */

void encoder_forward(float *out, const uint16_t *tokens, int row_stride,
                     const float *wte, const float *wpe, int B, int T, int C) {
    for (int b = 0; b < B; b++)
        for (int t = 0; t < T; t++) {
            float *o = out + ((size_t)b * T + t) * C;
            const float *we = wte + (size_t)tokens[(size_t)b * row_stride + t] * C;
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

void matmul_backward(float *dinp, float *dw, float *dbias, const float *dout,
                     const float *inp, const float *w, int N, int IC, int OC) {
    if (dinp)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, IC, OC,
                    1.0f, dout, OC, w, OC, 1.0f, dinp, IC);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, IC, OC, N,
                1.0f, inp, IC, dout, OC, 1.0f, dw, OC);
    if (!dbias) return;
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * OC;
        for (int c = 0; c < OC; c++) dbias[c] += d[c];
    }
}

/* Row i of a causal score matrix: softmax over columns 0..i, zeros after. */
static void causal_softmax_row(float *row, int i, int T) {
    float mx = -INFINITY;
    #pragma omp simd reduction(max:mx)
    for (int j = 0; j <= i; j++) mx = row[j] > mx ? row[j] : mx;
    float sum = 0.0f;
    #pragma omp simd reduction(+:sum)
    for (int j = 0; j <= i; j++) { row[j] = exp_softmax(row[j] - mx); sum += row[j]; }
    float inv = 1.0f / sum;
    #pragma omp simd
    for (int j = 0; j <= i; j++) row[j] *= inv;
    for (int j = i + 1; j < T; j++) row[j] = 0.0f;
}

void attention_forward(float *out, float *att, const float *qkv,
                       int B, int T, int C, int NH) {
    int hs = C / NH, C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            const float *q = qkv + (size_t)b * T * C3 + h * hs;
            const float *k = q + C, *v = q + 2 * C;
            float *p = att + ((size_t)b * NH + h) * T * T;
            float *y = out + (size_t)b * T * C + h * hs;
            for (int i0 = 0; i0 < T; i0 += ATT_BLOCK) {
                /* rows i0..i1-1 attend to columns 0..i1-1 only */
                int i1 = i0 + ATT_BLOCK < T ? i0 + ATT_BLOCK : T, rows = i1 - i0;
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, i1, hs, scale,
                            q + (size_t)i0 * C3, C3, k, C3, 0.0f, p + (size_t)i0 * T, T);
                for (int i = i0; i < i1; i++) causal_softmax_row(p + (size_t)i * T, i, T);
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hs, i1, 1.0f,
                            p + (size_t)i0 * T, T, v, C3, 0.0f, y + (size_t)i0 * C, C);
            }
        }
}

/* One (sequence, head): the GEMMs of the backward pass over causal blocks. */
static void attention_head_backward(float *dq, float *dk, float *dv, const float *dy,
                                    const float *q, const float *k, const float *v,
                                    const float *p, float *dp, int T, int C, int hs) {
    int C3 = 3 * C;
    float scale = 1.0f / sqrtf((float)hs);
    for (int i0 = 0; i0 < T; i0 += ATT_BLOCK) {
        int i1 = i0 + ATT_BLOCK < T ? i0 + ATT_BLOCK : T, rows = i1 - i0;
        /* dP = dY · Vᵀ on rows i0..i1, columns 0..i1 */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, i1, hs, 1.0f,
                    dy + (size_t)i0 * C, C, v, C3, 0.0f, dp + (size_t)i0 * T, T);
        for (int i = i0; i < i1; i++) {   /* softmax backward, then the scale */
            const float *pr = p + (size_t)i * T;
            float *dr = dp + (size_t)i * T, dot = 0.0f;
            #pragma omp simd reduction(+:dot)
            for (int j = 0; j <= i; j++) dot += pr[j] * dr[j];
            for (int j = 0; j <= i; j++) dr[j] = pr[j] * (dr[j] - dot) * scale;
            for (int j = i + 1; j < T; j++) dr[j] = 0.0f;
        }
        /* dQ[rows] += dS[rows, 0..i1] · K[0..i1] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, rows, hs, i1, 1.0f,
                    dp + (size_t)i0 * T, T, k, C3, 1.0f, dq + (size_t)i0 * C3, C3);
    }
    for (int j0 = 0; j0 < T; j0 += ATT_BLOCK) {
        /* columns j0..j1 receive from rows j0..T only (causal) */
        int j1 = j0 + ATT_BLOCK < T ? j0 + ATT_BLOCK : T, cols = j1 - j0, rows = T - j0;
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, hs, rows, 1.0f,
                    dp + (size_t)j0 * T + j0, T, q + (size_t)j0 * C3, C3, 1.0f,
                    dk + (size_t)j0 * C3, C3);
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, cols, hs, rows, 1.0f,
                    p + (size_t)j0 * T + j0, T, dy + (size_t)j0 * C, C, 1.0f,
                    dv + (size_t)j0 * C3, C3);
    }
}

void attention_backward(float *dqkv, const float *dout, const float *qkv,
                        const float *att, float *scratch, int B, int T, int C, int NH) {
    int hs = C / NH, C3 = 3 * C;
    for (int b = 0; b < B; b++)
        for (int h = 0; h < NH; h++) {
            size_t qoff = (size_t)b * T * C3 + h * hs;
            attention_head_backward(dqkv + qoff, dqkv + qoff + C, dqkv + qoff + 2 * C,
                                    dout + (size_t)b * T * C + h * hs,
                                    qkv + qoff, qkv + qoff + C, qkv + qoff + 2 * C,
                                    att + ((size_t)b * NH + h) * T * T, scratch, T, C, hs);
        }
}

void relu_backward(float *dinp, float *dbias, const float *dout, const float *act,
                   int N, int C) {
    for (int n = 0; n < N; n++) {
        const float *d = dout + (size_t)n * C, *a = act + (size_t)n * C;
        float *di = dinp + (size_t)n * C;
        for (int c = 0; c < C; c++) {
            float g = a[c] > 0.0f ? d[c] : 0.0f;
            di[c] = g;
            dbias[c] += g;
        }
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

/* layers.h — the transformer's layers, each a forward/backward pair
 * (llm.c habit). Backward functions ACCUMULATE into parameter gradients;
 * the input gradients of matmul and attention are overwritten (no zeroing
 * pass over [N][C] buffers first).
 * Shapes: N = B*T tokens, C channels; weights are [in][out]. Every matmul
 * goes through cblas_sgemm (single-threaded per rank). */
#ifndef RELUSCOPE_LAYERS_H
#define RELUSCOPE_LAYERS_H
#include <stddef.h>
#include <stdint.h>

/* out[N][C] = wte[token] + wpe[t] (wpe NULL: no position embedding, and
 * dwpe NULL in the backward) */
void encoder_forward(float *out, const uint16_t *tokens, int row_stride,
                     const float *wte, const float *wpe, int B, int T, int C);
void encoder_backward(float *dwte, float *dwpe, const float *dout,
                      const uint16_t *tokens, int row_stride, int B, int T, int C);

/* out[N][C] = (inp - mean) * rstd * w + b; saves mean[N], rstd[N] */
void layernorm_forward(float *out, float *mean, float *rstd, const float *inp,
                       const float *w, const float *b, int N, int C);
void layernorm_backward(float *dinp, float *dw, float *db, const float *dout,
                        const float *inp, const float *w, const float *mean,
                        const float *rstd, int N, int C);

/* out[N][OC] = inp[N][IC] · w[IC][OC] (+ bias[OC] unless bias is NULL) */
void matmul_forward(float *out, const float *inp, const float *w, const float *bias,
                    int N, int IC, int OC);
/* The model's forward products: inp holds B whole sequences of T rows, and
 * each sequence is one sgemm, so that a row's bits depend on its sequence
 * alone, never on how the batch is split over ranks (layers.c says why).
 * matmul_forward_seq_t multiplies by wtᵀ, wt[OC][IC] (the tied logits). */
void matmul_forward_seq(float *out, const float *inp, const float *w, const float *bias,
                        int B, int T, int IC, int OC);
void matmul_forward_seq_t(float *out, const float *inp, const float *wt, int B, int T,
                          int IC, int OC);
/* dinp = dout · wᵀ (overwritten; skipped if dinp NULL); dw += inpᵀ · dout;
 * dbias += Σ rows */
void matmul_backward(float *dinp, float *dw, float *dbias, const float *dout,
                     const float *inp, const float *w, int N, int IC, int OC);

/* Causal multi-head attention (attention.c). qkv[N][3C] (q | k | v, heads
 * of hs = C/NH channels each); out[N][C]; lse[B][NH][T]: per query row the
 * log-sum-exp of its scaled scores, from which the backward recomputes the
 * probabilities (no T × T matrix is stored). Only the causal part is
 * computed. scratch: attention_scratch_floats(T, hs) floats. */
size_t attention_scratch_floats(int T, int hs);
void attention_forward(float *out, float *lse, const float *qkv, float *scratch,
                       int B, int T, int C, int NH);
/* dqkv = d(loss)/d(qkv) given dout = d(loss)/d(out) (every element written) */
void attention_backward(float *dqkv, const float *dout, const float *qkv,
                        const float *lse, float *scratch, int B, int T, int C, int NH);

/* Rotary position embedding (pos=rope), in place on the q and k parts of
 * qkv[B*T][3C] (v untouched): in each head of hs channels, channel pair
 * (i, i + hs/2) of the token at position t turns by the angle t·θ_i,
 * θ_i = 10000^(-2i/hs) (the half-split form of GPT-NeoX, not interleaved
 * pairs). cos, sin: [T][hs/2] from rope_tables. The backward turns dq and
 * dk by the opposite angle (a rotation's transpose), in place on dqkv. */
void rope_tables(float *cos_t, float *sin_t, int T, int hs);
void rope_forward(float *qkv, const float *cos_t, const float *sin_t, int B, int T, int C,
                  int NH);
void rope_backward(float *dqkv, const float *cos_t, const float *sin_t, int B, int T, int C,
                   int NH);

/* out = a + b */
void residual_forward(float *out, const float *a, const float *b, size_t n);

/* probs[N][V] = softmax(logits) in place; losses[n] = -log p[target] */
void crossentropy_forward(float *logits_to_probs, float *losses,
                          const uint16_t *targets, int row_stride, int B, int T, int V);
/* dlogits = (probs - onehot) * scale, in place */
void crossentropy_backward(float *probs_to_dlogits, const uint16_t *targets,
                           int row_stride, int B, int T, int V, float scale);

#endif

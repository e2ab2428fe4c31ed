/* vecmath.h — an exp() that the compiler can vectorize.
 *
 * Why: the softmaxes (attention, cross-entropy) call expf() tens of millions
 * of times per step. libm's expf is a scalar call through the PLT, and GCC
 * vectorizes it only under -ffast-math, which this project does not use.
 * exp_softmax() below is branch-free arithmetic on floats and integers, so a
 * loop marked `#pragma omp simd` (built with -fopenmp-simd: SIMD pragmas only,
 * no OpenMP runtime, no threads) turns into AVX-512/AVX2 code.
 *
 * Method: exp(x) = 2^n · exp(r), n = round(x / ln 2), r = x − n·ln 2 in
 * [−ln2/2, ln2/2], with ln 2 split in two parts so r is exact (Cody–Waite);
 * exp(r) by a degree-6 minimax polynomial; 2^n built in the exponent bits.
 * Domain: the softmaxes only ever exponentiate x − max(x) <= 0. Inputs below
 * −86.6 are clamped there, so n >= −125 and 2^n·exp(r) stays a normal float
 * (the result is ~2e−38 instead of a denormal or 0: against a softmax sum
 * >= 1 that is far below float resolution). NaN propagates. Accuracy: within 1 ulp of exp() over
 * [−86.6, 0] (tests/test_vecmath.c checks it against exp() in double). */
#ifndef RELUSCOPE_VECMATH_H
#define RELUSCOPE_VECMATH_H
#include <stdint.h>
#include <string.h>

static inline float exp_softmax(float x) {
    const float log2e = 1.44269504088896341f;
    const float ln2_hi = 0.693359375f;          /* 8 significant bits: n·ln2_hi exact */
    const float ln2_lo = -2.12194440e-4f;       /* ln 2 − ln2_hi */
    const float shifter = 12582912.0f;          /* 1.5·2^23: adding it rounds to an integer */
    float in = x;
    x = x < -86.6f ? -86.6f : x;                /* keeps the result a normal number */
    x = x > 0.0f ? 0.0f : x;                    /* the softmax domain (NaN passes both) */
    float t = x * log2e + shifter;              /* round-to-nearest n in the low bits */
    float n = t - shifter;
    float r = x - n * ln2_hi;
    r = r - n * ln2_lo;
    /* exp(r) = 1 + r + r²·P(r) on [−ln2/2, ln2/2] */
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    float e = p * (r * r) + r + 1.0f;
    uint32_t tbits, ebits;
    memcpy(&tbits, &t, sizeof tbits);
    memcpy(&ebits, &e, sizeof ebits);
    /* t's bits are those of 1.5·2^23 plus n: add n to e's exponent field
     * (unsigned: wraps instead of overflowing when the input is NaN) */
    ebits += (tbits - 0x4B400000u) << 23;
    memcpy(&e, &ebits, sizeof e);
    return in != in ? in : e;
}

#endif

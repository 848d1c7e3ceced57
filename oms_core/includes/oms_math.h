/* Exact fixed-point helpers: products of prices and quantities are formed in 128 bits so a
 * check can tell an overflow from a large but valid value. */
#ifndef OMS_MATH_H
#define OMS_MATH_H
#include <stdint.h>

typedef __int128 oms_i128;

#define OMS_MAX_RAW 1000000000000000LL          /* limits.MAX_RAW */
#define OMS_MAX_NOTIONAL 4611686018427387904LL  /* limits.MAX_NOTIONAL = 2**62 */
#define OMS_NANOS_PER_TOKEN 1000000000LL        /* limits.NANOS_PER_TOKEN */

/* a*b*c when it fits in [-limit, limit], else sets *overflow = 1 and returns 0. */
static inline int64_t oms_mul3(int64_t a, int64_t b, int64_t c, int64_t limit, int *overflow) {
    oms_i128 p = (oms_i128)a * (oms_i128)b * (oms_i128)c;
    if (p > (oms_i128)limit || p < -(oms_i128)limit) { *overflow = 1; return 0; }
    return (int64_t)p;
}

/* a*b/c for non-negative operands, truncated toward zero (the ledger's one rounding rule). */
static inline int64_t oms_muldiv(int64_t a, int64_t b, int64_t c) {
    return (int64_t)(((oms_i128)a * (oms_i128)b) / (oms_i128)c);
}

/* A fee's value in quote units: fee*price*mult/div truncated toward zero (mult or div is 1);
 * sets *overflow when |fee| > MAX_RAW or the value leaves [-MAX_NOTIONAL, MAX_NOTIONAL]. */
static inline int64_t oms_fee_value(int64_t fee, int64_t price, int64_t mult, int64_t div,
                                    int *overflow) {
    if (fee > OMS_MAX_RAW || fee < -OMS_MAX_RAW) { *overflow = 1; return 0; }
    oms_i128 p = (oms_i128)fee * (oms_i128)price;
    if (mult > 1 && (p > OMS_MAX_NOTIONAL || p < -(oms_i128)OMS_MAX_NOTIONAL)) {
        *overflow = 1; return 0;
    }
    p = p * mult / div;
    if (p > OMS_MAX_NOTIONAL || p < -(oms_i128)OMS_MAX_NOTIONAL) { *overflow = 1; return 0; }
    return (int64_t)p;
}

/* lhs_a*lhs_b > rhs_a*rhs_b, exactly. */
static inline int oms_prod_gt(int64_t lhs_a, int64_t lhs_b, int64_t rhs_a, int64_t rhs_b) {
    return (oms_i128)lhs_a * lhs_b > (oms_i128)rhs_a * rhs_b;
}

static inline uint64_t oms_mix64(uint64_t x) {
    x ^= x >> 33; x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33; x *= 0xc4ceb9fe1a85ec53ULL;
    x ^= x >> 33;
    return x;
}
#endif

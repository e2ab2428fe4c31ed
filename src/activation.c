/* activation.c — the activation of each `act` variant value (activation.h). */
#include "activation.h"
#include <stddef.h>
#include "config.h"

const Activation *activation_of(int act_kind) {
    switch (act_kind) {
    case ACT_RELU: return &ACTIVATION_RELU;
    case ACT_RELU2: return &ACTIVATION_RELU2;
    default: return NULL;
    }
}

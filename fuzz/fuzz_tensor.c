/* libFuzzer target: TensorProto decoding (test data .pb files). */
#include <stdint.h>
#include <stdlib.h>
#include "pare/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    pare_tensor *t;
    pare_error err;
    if (pare_tensor_pb_decode(data, size, &t, &err) == PARE_OK)
        pare_tensor_free(t);
    return 0;
}

// BINPICK_HD marks a function that compiles for the CPU and, under nvcc, for the GPU too: the
// CUDA ranking calls the CPU path's own arithmetic where both must agree to the bit.
#pragma once

#if defined(__CUDACC__)
#define BINPICK_HD __host__ __device__
#else
#define BINPICK_HD
#endif

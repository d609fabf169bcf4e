#include "cpu.h"

/*
 * No copy of the answer is kept here, so no mutable global: the compiler's
 * runtime (libgcc, or compiler-rt under clang) asks cpuid once, in a
 * constructor that runs before main, and keeps the features in its own
 * __cpu_model, which __builtin_cpu_supports reads (a load and a bit test).
 * __builtin_cpu_init is that constructor; it returns at once when it has
 * run, and is called only for a caller that might come before it (an
 * ifunc resolver or another constructor, as the compilers' manuals say).
 */
int cpu_vectors(void)
{
#if defined(__GNUC__) && defined(__x86_64__)
	__builtin_cpu_init();
	if (__builtin_cpu_supports("avx512f"))
		return CPU_AVX512;
	if (__builtin_cpu_supports("avx2"))
		return CPU_AVX2;
#endif
	return CPU_SCALAR;
}

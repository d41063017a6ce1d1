/* A stand-in libcuda.so.1 for tests on machines without a GPU: an "old"
 * driver (12.4) with one device whose memory is host memory. cudart 13
 * refuses it (cudaErrorInsufficientDriver), which sends gpu-probe down its
 * driver-API path; FAKE_CUDA_CORRUPT=1 makes copies lose data. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int cuDriverGetVersion(int *v) { *v = 12040; return 0; }
int cuInit(unsigned f) { (void)f; return 0; }
int cuDeviceGetCount(int *n) { *n = 1; return 0; }
int cuDeviceGet(int *d, int i) { *d = i; return 0; }
int cuDeviceGetName(char *s, int n, int d) { (void)d; strncpy(s, "Fake GPU 12GB", (size_t)n); return 0; }
int cuDeviceTotalMem_v2(size_t *b, int d) { (void)d; *b = (size_t)12 << 30; return 0; }
int cuDeviceGetAttribute(int *v, int a, int d)
{
	(void)d;
	*v = a == 75 ? 8 : a == 76 ? 6 : a == 16 ? 28 : a == 33 ? 1 : 0;
	return 0;
}
int cuDevicePrimaryCtxRetain(void **c, int d) { (void)d; *c = (void *)1; return 0; }
int cuDevicePrimaryCtxRelease_v2(int d) { (void)d; return 0; }
int cuCtxSetCurrent(void *c) { (void)c; return 0; }
int cuMemGetInfo_v2(size_t *f, size_t *t) { *f = (size_t)11 << 30; *t = (size_t)12 << 30; return 0; }
int cuMemAlloc_v2(unsigned long long *p, size_t n) { *p = (uintptr_t)malloc(n); return *p ? 0 : 2; }
int cuMemFree_v2(unsigned long long p) { free((void *)(uintptr_t)p); return 0; }
int cuMemcpyHtoD_v2(unsigned long long d, const void *s, size_t n) { memcpy((void *)(uintptr_t)d, s, n); return 0; }
int cuMemcpyDtoD_v2(unsigned long long d, unsigned long long s, size_t n)
{
	memcpy((void *)(uintptr_t)d, (void *)(uintptr_t)s, n);
	const char *c = getenv("FAKE_CUDA_CORRUPT");
	if (c && *c == '1')
		((unsigned char *)(uintptr_t)d)[n / 2] ^= 0xff;
	return 0;
}
int cuMemcpyDtoH_v2(void *d, unsigned long long s, size_t n) { memcpy(d, (void *)(uintptr_t)s, n); return 0; }
int cuGetErrorName(int r, const char **s) { (void)r; *s = "CUDA_ERROR_FAKE"; return 0; }
int cuGetErrorString(int r, const char **s) { (void)r; *s = "fake error"; return 0; }

/* gpu-probe: what the CUDA runtime sees, as one JSON line.
 *
 *   gpu-probe            probe once, print JSON, exit 0 (GPU usable) or 1
 *   gpu-probe --serve [PORT]
 *                        answer the legacy ZMQ health protocol (REP on
 *                        tcp://$ZMQ_BIND_IP:PORT, PORT default
 *                        $HEALTH_CHECK_PORT): a request containing
 *                        "health_check" gets a fresh probe as JSON
 *
 * Linked against the static cudart, so it runs where only the driver is
 * installed (libcuda.so.1 is the one library the runtime dlopens). Without a
 * driver or a GPU every CUDA call returns an error: report it in one line
 * and exit 1, never crash. Where the driver is older than this cudart
 * (cudart 13 needs driver >= 580) the same probe runs on the driver API
 * (libcuda.so.1, dlopened), and the JSON says "api":"driver". libzmq is
 * dlopened only by --serve, so the one-shot probe needs nothing beyond libc
 * and the driver. (Not agents/libagent: it links libzmq, which the one-shot
 * probe must not need, and its reply has no room for a per-GPU report; the
 * health reply here carries libagent's members: agent, group, uptime_s, pid.)
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>

#include <cuda_runtime_api.h>

#define RT_BYTES (4u << 20) /* round trip: 4 MiB host -> device -> device -> host */

struct buf {
	char s[16384];
	size_t n;
};

__attribute__((format(printf, 2, 3))) static void bput(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	if (b->n >= sizeof b->s)
		return;
	va_start(ap, fmt);
	int r = vsnprintf(b->s + b->n, sizeof b->s - b->n, fmt, ap);
	va_end(ap);
	if (r > 0)
		b->n += (size_t)r;
	if (b->n >= sizeof b->s)
		b->n = sizeof b->s - 1;
}

static void bstr(struct buf *b, const char *s)
{
	bput(b, "\"");
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			bput(b, "\\%c", c);
		else if (c < 0x20)
			bput(b, "\\u%04x", c);
		else
			bput(b, "%c", c);
	}
	bput(b, "\"");
}

static double now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* "cudaGetDeviceCount: no CUDA-capable device is detected (cudaErrorNoDevice)" */
static void cuda_reason(char *out, size_t n, const char *call, cudaError_t err)
{
	snprintf(out, n, "%s: %s (%s)", call, cudaGetErrorString(err), cudaGetErrorName(err));
}

/* Host -> device, device -> device, device -> host; compare. */
static bool round_trip(char *why, size_t n, double *ms)
{
	unsigned char *h = malloc(RT_BYTES), *back = malloc(RT_BYTES);
	void *d1 = NULL, *d2 = NULL;
	cudaError_t err;
	bool ok = false;
	double t0 = now_ms();
	if (!h || !back) {
		snprintf(why, n, "malloc: out of memory");
		goto out;
	}
	for (unsigned i = 0; i < RT_BYTES; i++)
		h[i] = (unsigned char)(i * 2654435761u >> 24);
	memset(back, 0, RT_BYTES);
	if ((err = cudaMalloc(&d1, RT_BYTES)) != cudaSuccess) {
		cuda_reason(why, n, "cudaMalloc", err);
		goto out;
	}
	if ((err = cudaMalloc(&d2, RT_BYTES)) != cudaSuccess) {
		cuda_reason(why, n, "cudaMalloc", err);
		goto out;
	}
	if ((err = cudaMemcpy(d1, h, RT_BYTES, cudaMemcpyHostToDevice)) != cudaSuccess) {
		cuda_reason(why, n, "cudaMemcpy(HtoD)", err);
		goto out;
	}
	if ((err = cudaMemcpy(d2, d1, RT_BYTES, cudaMemcpyDeviceToDevice)) != cudaSuccess) {
		cuda_reason(why, n, "cudaMemcpy(DtoD)", err);
		goto out;
	}
	if ((err = cudaMemcpy(back, d2, RT_BYTES, cudaMemcpyDeviceToHost)) != cudaSuccess) {
		cuda_reason(why, n, "cudaMemcpy(DtoH)", err);
		goto out;
	}
	ok = memcmp(h, back, RT_BYTES) == 0;
	if (!ok)
		snprintf(why, n, "round trip: data came back different");
out:
	*ms = now_ms() - t0;
	if (d1)
		cudaFree(d1);
	if (d2)
		cudaFree(d2);
	free(h);
	free(back);
	return ok;
}

/* ---- fallback: the driver API, for a driver older than this cudart ----
 * cudart 13 needs driver >= 580. A host with an older driver still has a
 * working GPU; the driver API (stable, versioned _v2 symbols) reaches it
 * directly, so the probe reports the GPU and says which API it used. */

typedef int CUres;
struct cu_api {
	CUres (*init)(unsigned);
	CUres (*driver_version)(int *);
	CUres (*count)(int *);
	CUres (*get)(int *, int);
	CUres (*name)(char *, int, int);
	CUres (*total_mem)(size_t *, int);
	CUres (*attr)(int *, int, int);
	CUres (*ctx_retain)(void **, int);
	CUres (*ctx_release)(int);
	CUres (*ctx_set)(void *);
	CUres (*mem_info)(size_t *, size_t *);
	CUres (*alloc)(unsigned long long *, size_t);
	CUres (*free_)(unsigned long long);
	CUres (*htod)(unsigned long long, const void *, size_t);
	CUres (*dtod)(unsigned long long, unsigned long long, size_t);
	CUres (*dtoh)(void *, unsigned long long, size_t);
	CUres (*err_name)(CUres, const char **);
	CUres (*err_str)(CUres, const char **);
};

static void cu_reason(const struct cu_api *c, char *out, size_t n, const char *call, CUres r)
{
	const char *name = "?", *str = "?";
	c->err_name(r, &name);
	c->err_str(r, &str);
	snprintf(out, n, "%s: %s (%s)", call, str ? str : "?", name ? name : "?");
}

static int load_cu(struct cu_api *c)
{
	void *h = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!h)
		return -1;
#define SYM(f, n) if (!(*(void **)&c->f = dlsym(h, n))) return -1;
	SYM(init, "cuInit");
	SYM(driver_version, "cuDriverGetVersion");
	SYM(count, "cuDeviceGetCount");
	SYM(get, "cuDeviceGet");
	SYM(name, "cuDeviceGetName");
	SYM(total_mem, "cuDeviceTotalMem_v2");
	SYM(attr, "cuDeviceGetAttribute");
	SYM(ctx_retain, "cuDevicePrimaryCtxRetain");
	SYM(ctx_release, "cuDevicePrimaryCtxRelease_v2");
	SYM(ctx_set, "cuCtxSetCurrent");
	SYM(mem_info, "cuMemGetInfo_v2");
	SYM(alloc, "cuMemAlloc_v2");
	SYM(free_, "cuMemFree_v2");
	SYM(htod, "cuMemcpyHtoD_v2");
	SYM(dtod, "cuMemcpyDtoD_v2");
	SYM(dtoh, "cuMemcpyDtoH_v2");
	SYM(err_name, "cuGetErrorName");
	SYM(err_str, "cuGetErrorString");
#undef SYM
	return 0;
}

static bool cu_round_trip(const struct cu_api *c, char *why, size_t n, double *ms)
{
	unsigned char *h = malloc(RT_BYTES), *back = malloc(RT_BYTES);
	unsigned long long d1 = 0, d2 = 0;
	CUres r;
	bool ok = false;
	double t0 = now_ms();
	if (!h || !back) {
		snprintf(why, n, "malloc: out of memory");
		goto out;
	}
	for (unsigned i = 0; i < RT_BYTES; i++)
		h[i] = (unsigned char)(i * 2654435761u >> 24);
	memset(back, 0, RT_BYTES);
	if ((r = c->alloc(&d1, RT_BYTES)) || (r = c->alloc(&d2, RT_BYTES))) {
		cu_reason(c, why, n, "cuMemAlloc", r);
		goto out;
	}
	if ((r = c->htod(d1, h, RT_BYTES)) || (r = c->dtod(d2, d1, RT_BYTES)) ||
	    (r = c->dtoh(back, d2, RT_BYTES))) {
		cu_reason(c, why, n, "cuMemcpy", r);
		goto out;
	}
	ok = memcmp(h, back, RT_BYTES) == 0;
	if (!ok)
		snprintf(why, n, "round trip: data came back different");
out:
	*ms = now_ms() - t0;
	if (d1)
		c->free_(d1);
	if (d2)
		c->free_(d2);
	free(h);
	free(back);
	return ok;
}

/* Same JSON shape as the runtime probe, "api":"driver". */
static bool probe_driver_api(struct buf *b, char *reason, size_t rn, const char *rt_error, int rt)
{
	struct cu_api c;
	int count = 0, drv = 0;
	CUres r;
	bool all_ok = true;
	if (load_cu(&c) < 0)
		return false;
	if ((r = c.init(0)) || (r = c.count(&count)) || count == 0) {
		if (r)
			cu_reason(&c, reason, rn, "cuInit/cuDeviceGetCount", r);
		else
			snprintf(reason, rn, "cuDeviceGetCount: 0 devices");
		return false;
	}
	c.driver_version(&drv);
	b->n = 0;
	bput(b, "\"api\":\"driver\",\"runtime_error\":");
	bstr(b, rt_error);
	bput(b, ",\"driver_version\":%d,\"runtime_version\":%d,\"count\":%d,\"devices\":[", drv, rt, count);
	for (int i = 0; i < count; i++) {
		char name[256] = "", why[256] = "";
		size_t total = 0, free_b = 0;
		int dev = 0, ccmaj = 0, ccmin = 0, sms = 0, dom = 0, bus = 0, slot = 0;
		void *ctx = NULL;
		double ms = 0;
		bool ok = false;
		bput(b, "%s{\"index\":%d", i ? "," : "", i);
		if ((r = c.get(&dev, i)) || (r = c.name(name, sizeof name, dev)) ||
		    (r = c.total_mem(&total, dev)) || (r = c.ctx_retain(&ctx, dev)) ||
		    (r = c.ctx_set(ctx))) {
			cu_reason(&c, why, sizeof why, "cuDevice/cuCtx", r);
		} else {
			c.attr(&ccmaj, 75, dev);
			c.attr(&ccmin, 76, dev);
			c.attr(&sms, 16, dev);
			c.attr(&dom, 50, dev);
			c.attr(&bus, 33, dev);
			c.attr(&slot, 34, dev);
			c.mem_info(&free_b, &total);
			ok = cu_round_trip(&c, why, sizeof why, &ms);
			bput(b, ",\"name\":");
			bstr(b, name);
			bput(b, ",\"pci_bus_id\":\"%04x:%02x:%02x.0\",\"compute_capability\":\"%d.%d\","
				"\"multiprocessors\":%d,\"total_memory\":%zu,\"free_memory\":%zu,"
				"\"round_trip\":{\"bytes\":%u,\"ok\":%s,\"ms\":%.3f}",
			     dom, bus, slot, ccmaj, ccmin, sms, total, free_b, RT_BYTES,
			     ok ? "true" : "false", ms);
			c.ctx_release(dev);
		}
		if (!ok) {
			bput(b, ",\"ok\":false,\"error\":");
			bstr(b, why);
			all_ok = false;
			if (!reason[0])
				snprintf(reason, rn, "device %d: %s", i, why);
		}
		bput(b, "}");
	}
	bput(b, "]}");
	return all_ok;
}

/* The fields after "status" into b. True when every GPU answered and
 * round-tripped. */
static bool probe_body(struct buf *b, char *reason, size_t rn)
{
	int count = 0, drv = 0, rt = 0;
	cudaError_t err;
	bool all_ok = true;
	b->n = 0;
	reason[0] = '\0';
	cudaRuntimeGetVersion(&rt);
	cudaDriverGetVersion(&drv); /* 0 when no driver is installed */
	err = cudaGetDeviceCount(&count);
	if (err == cudaErrorInsufficientDriver && drv > 0) {
		char rt_error[256], why[256] = "";
		cuda_reason(rt_error, sizeof rt_error, "cudaGetDeviceCount", err);
		if (probe_driver_api(b, why, sizeof why, rt_error, rt) || b->n) {
			snprintf(reason, rn, "%s", why);
			return !why[0];
		}
	}
	if (err != cudaSuccess || count == 0) {
		if (err != cudaSuccess)
			cuda_reason(reason, rn, "cudaGetDeviceCount", err);
		else
			snprintf(reason, rn, "cudaGetDeviceCount: 0 devices");
		bput(b, "\"error\":");
		bstr(b, reason);
		bput(b, ",\"api\":\"runtime\",\"driver_version\":%d,\"runtime_version\":%d,\"count\":0,\"devices\":[]}", drv, rt);
		return false;
	}
	bput(b, "\"api\":\"runtime\",\"driver_version\":%d,\"runtime_version\":%d,\"count\":%d,\"devices\":[",
	     drv, rt, count);
	for (int i = 0; i < count; i++) {
		struct cudaDeviceProp p;
		char why[256] = "", bus[32] = "";
		size_t free_b = 0, total_b = 0;
		double ms = 0;
		bool ok;
		bput(b, "%s{\"index\":%d", i ? "," : "", i);
		if ((err = cudaGetDeviceProperties(&p, i)) != cudaSuccess ||
		    (err = cudaSetDevice(i)) != cudaSuccess) {
			cuda_reason(why, sizeof why, "cudaGetDeviceProperties", err);
			bput(b, ",\"ok\":false,\"error\":");
			bstr(b, why);
			bput(b, "}");
			all_ok = false;
			if (!reason[0])
				snprintf(reason, rn, "device %d: %s", i, why);
			continue;
		}
		cudaDeviceGetPCIBusId(bus, sizeof bus, i);
		cudaMemGetInfo(&free_b, &total_b);
		ok = round_trip(why, sizeof why, &ms);
		bput(b, ",\"name\":");
		bstr(b, p.name);
		bput(b, ",\"pci_bus_id\":");
		bstr(b, bus);
		bput(b, ",\"compute_capability\":\"%d.%d\",\"multiprocessors\":%d,"
			"\"total_memory\":%zu,\"free_memory\":%zu,"
			"\"round_trip\":{\"bytes\":%u,\"ok\":%s,\"ms\":%.3f}",
		     p.major, p.minor, p.multiProcessorCount, p.totalGlobalMem, free_b,
		     RT_BYTES, ok ? "true" : "false", ms);
		if (!ok) {
			bput(b, ",\"ok\":false,\"error\":");
			bstr(b, why);
			all_ok = false;
			if (!reason[0])
				snprintf(reason, rn, "device %d (%s): %s", i, p.name, why);
		}
		bput(b, "}");
	}
	bput(b, "]}");
	return all_ok;
}

/* One probe as a JSON object into b; status first, for readers that stop
 * early (and for the legacy health check, which looks at it). */
static bool probe(struct buf *b, char *reason, size_t rn, const char *ident)
{
	static struct buf body;
	bool ok = probe_body(&body, reason, rn);
	b->n = 0;
	bput(b, "{\"status\":\"%s\",%s%s", ok ? "ok" : "error", ident ? ident : "", body.s);
	return ok;
}

/* The members libagent's health reply carries (agents/libagent), so a
 * health check sees the same shape from every C agent. */
static void ident(char *out, size_t n, double t0)
{
	static struct buf b;
	char name[100] = "gpu-probe", group[100] = "";
	const char *en = getenv("AINIT_AGENT"), *eg = getenv("AINIT_GROUP");
	if (en && *en)
		snprintf(name, sizeof name, "%s", en);
	if (eg)
		snprintf(group, sizeof group, "%s", eg);
	b.n = 0;
	bput(&b, "\"agent\":");
	bstr(&b, name); /* at most 6 bytes per char escaped: fits n = 2 x 600 + 64 */
	bput(&b, ",\"group\":");
	bstr(&b, group);
	bput(&b, ",\"uptime_s\":%llu,\"pid\":%d,", (unsigned long long)((now_ms() - t0) / 1000),
	     (int)getpid());
	size_t l = b.n < n - 1 ? b.n : n - 1;
	memcpy(out, b.s, l);
	out[l] = '\0';
}

/* ---- --serve: the legacy ZMQ health protocol, libzmq loaded on demand ---- */

#define ZMQ_REP_ 4
struct zmq_api {
	void *(*ctx_new)(void);
	int (*ctx_term)(void *);
	void *(*socket)(void *, int);
	int (*bind)(void *, const char *);
	int (*close)(void *);
	int (*recv)(void *, void *, size_t, int);
	int (*send)(void *, const void *, size_t, int);
	int (*setsockopt)(void *, int, const void *, size_t);
	int (*poll)(void *items, int n, long timeout);
};

struct zmq_pollitem_ { /* zmq_pollitem_t */
	void *socket;
	int fd;
	short events, revents;
};

static int load_zmq(struct zmq_api *z)
{
	void *h = dlopen("libzmq.so.5", RTLD_NOW | RTLD_LOCAL);
	if (!h) {
		fprintf(stderr, "gpu-probe: --serve needs libzmq.so.5: %s\n", dlerror());
		return -1;
	}
#define SYM(f, n) if (!(*(void **)&z->f = dlsym(h, n))) { fprintf(stderr, "gpu-probe: libzmq: no %s\n", n); return -1; }
	SYM(ctx_new, "zmq_ctx_new");
	SYM(ctx_term, "zmq_ctx_term");
	SYM(socket, "zmq_socket");
	SYM(bind, "zmq_bind");
	SYM(close, "zmq_close");
	SYM(recv, "zmq_recv");
	SYM(send, "zmq_send");
	SYM(setsockopt, "zmq_setsockopt");
	SYM(poll, "zmq_poll");
#undef SYM
	return 0;
}

static int serve(const char *port)
{
	struct zmq_api z;
	struct buf *b = malloc(sizeof *b);
	char ep[128], reason[512], req[256];
	const char *ip = getenv("ZMQ_BIND_IP");
	int linger = 0, sfd;
	sigset_t term;
	/* libzmq and cudart start threads; a process-directed SIGTERM could
	 * land in one of them. Block it everywhere (threads inherit the mask)
	 * and take it from a signalfd polled beside the socket. */
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	sigaddset(&term, SIGINT);
	if (sigprocmask(SIG_BLOCK, &term, NULL) < 0 || (sfd = signalfd(-1, &term, SFD_CLOEXEC)) < 0) {
		fprintf(stderr, "gpu-probe: signalfd: %s\n", strerror(errno));
		return 1;
	}
	if (!b || load_zmq(&z) < 0)
		return 1;
	snprintf(ep, sizeof ep, "tcp://%s:%s", ip && *ip ? ip : "0.0.0.0", port);
	void *ctx = z.ctx_new(), *s = ctx ? z.socket(ctx, ZMQ_REP_) : NULL;
	if (!s || z.bind(s, ep) < 0) {
		fprintf(stderr, "gpu-probe: cannot bind %s: %s\n", ep, strerror(errno));
		return 1;
	}
	z.setsockopt(s, 17 /* ZMQ_LINGER */, &linger, sizeof linger);
	char id[1400];
	double t0 = now_ms();
	ident(id, sizeof id, t0);
	bool ok = probe(b, reason, sizeof reason, id);
	fprintf(stderr, "gpu-probe: serving health on %s: %s\n", ep, ok ? "GPU ok" : reason);
	for (;;) {
		struct zmq_pollitem_ it[2] = {{s, 0, 1 /* ZMQ_POLLIN */, 0}, {NULL, sfd, 1, 0}};
		if (z.poll(it, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			fprintf(stderr, "gpu-probe: zmq_poll: %s\n", strerror(errno));
			break;
		}
		if (it[1].revents)
			break; /* SIGTERM / SIGINT */
		if (!it[0].revents)
			continue;
		int n = z.recv(s, req, sizeof req - 1, 1 /* ZMQ_DONTWAIT */);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				continue;
			fprintf(stderr, "gpu-probe: zmq_recv: %s\n", strerror(errno));
			break;
		}
		req[n < (int)sizeof req - 1 ? n : (int)sizeof req - 1] = '\0';
		if (strstr(req, "health_check")) {
			ident(id, sizeof id, t0);
			probe(b, reason, sizeof reason, id);
			z.send(s, b->s, b->n, 0);
		} else {
			static const char bad[] = "{\"status\":\"error\",\"error\":\"unknown request\"}";
			z.send(s, bad, sizeof bad - 1, 0);
		}
	}
	z.close(s);
	z.ctx_term(ctx);
	free(b);
	return 0;
}

int main(int argc, char **argv)
{
	static struct buf b;
	char reason[512];
	if (argc > 1 && !strcmp(argv[1], "--serve")) {
		const char *port = argc > 2 ? argv[2] : getenv("HEALTH_CHECK_PORT");
		if (!port || !*port) {
			fprintf(stderr, "gpu-probe: --serve needs a PORT or $HEALTH_CHECK_PORT\n");
			return 2;
		}
		return serve(port);
	}
	if (argc > 1) {
		fprintf(stderr, "usage: gpu-probe [--serve [PORT]]\n");
		return 2;
	}
	bool ok = probe(&b, reason, sizeof reason, NULL);
	printf("%s\n", b.s);
	fflush(stdout);
	if (!ok) {
		fprintf(stderr, "gpu-probe: no usable GPU: %s\n", reason);
		return 1;
	}
	return 0;
}

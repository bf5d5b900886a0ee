/* fpu OUTFILE: keeps floating-point and vector state live in registers almost all the time, so that a
 * dump catches it there: blocks of ~20M iterations add 1.0 to 14 ymm registers of doubles (and, where
 * the CPU has AVX-512, to zmm16-zmm31) without ever leaving the registers, then check the sums exactly;
 * MXCSR is set to round-toward-zero and checked too. Any mismatch writes "fpu BAD ..." to OUTFILE and
 * exits 1. On SIGUSR1 it writes "fpu ok blocks=N" to OUTFILE. */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ITERS 20000000L
#define MXCSR_RZ 0x7f80 /* all exceptions masked, rounding toward zero */

static volatile sig_atomic_t go;
static const char *outfile;

static void on_usr1(int sig)
{
	(void)sig;
	go = 1;
}

static void report(const char *text)
{
	FILE *f = fopen(outfile, "w");
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static double init[16][4] __attribute__((aligned(64)));
static double out[16][4] __attribute__((aligned(64)));
static double init512[16][8] __attribute__((aligned(64)));
static double out512[16][8] __attribute__((aligned(64)));
static const double one = 1.0;

static void avx_block(void)
{
	__asm__ volatile(
		"vbroadcastsd %[one], %%ymm15\n"
		"vmovapd 0(%[in]), %%ymm0\n vmovapd 32(%[in]), %%ymm1\n vmovapd 64(%[in]), %%ymm2\n"
		"vmovapd 96(%[in]), %%ymm3\n vmovapd 128(%[in]), %%ymm4\n vmovapd 160(%[in]), %%ymm5\n"
		"vmovapd 192(%[in]), %%ymm6\n vmovapd 224(%[in]), %%ymm7\n vmovapd 256(%[in]), %%ymm8\n"
		"vmovapd 288(%[in]), %%ymm9\n vmovapd 320(%[in]), %%ymm10\n vmovapd 352(%[in]), %%ymm11\n"
		"vmovapd 384(%[in]), %%ymm12\n vmovapd 416(%[in]), %%ymm13\n"
		"mov %[n], %%rcx\n"
		"1:\n"
		"vaddpd %%ymm15, %%ymm0, %%ymm0\n vaddpd %%ymm15, %%ymm1, %%ymm1\n vaddpd %%ymm15, %%ymm2, %%ymm2\n"
		"vaddpd %%ymm15, %%ymm3, %%ymm3\n vaddpd %%ymm15, %%ymm4, %%ymm4\n vaddpd %%ymm15, %%ymm5, %%ymm5\n"
		"vaddpd %%ymm15, %%ymm6, %%ymm6\n vaddpd %%ymm15, %%ymm7, %%ymm7\n vaddpd %%ymm15, %%ymm8, %%ymm8\n"
		"vaddpd %%ymm15, %%ymm9, %%ymm9\n vaddpd %%ymm15, %%ymm10, %%ymm10\n vaddpd %%ymm15, %%ymm11, %%ymm11\n"
		"vaddpd %%ymm15, %%ymm12, %%ymm12\n vaddpd %%ymm15, %%ymm13, %%ymm13\n"
		"dec %%rcx\n jnz 1b\n"
		"vmovapd %%ymm0, 0(%[o])\n vmovapd %%ymm1, 32(%[o])\n vmovapd %%ymm2, 64(%[o])\n"
		"vmovapd %%ymm3, 96(%[o])\n vmovapd %%ymm4, 128(%[o])\n vmovapd %%ymm5, 160(%[o])\n"
		"vmovapd %%ymm6, 192(%[o])\n vmovapd %%ymm7, 224(%[o])\n vmovapd %%ymm8, 256(%[o])\n"
		"vmovapd %%ymm9, 288(%[o])\n vmovapd %%ymm10, 320(%[o])\n vmovapd %%ymm11, 352(%[o])\n"
		"vmovapd %%ymm12, 384(%[o])\n vmovapd %%ymm13, 416(%[o])\n"
		"vzeroupper\n"
		:
		: [in] "r"(init), [o] "r"(out), [n] "r"(ITERS), [one] "m"(one)
		: "rcx", "memory", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9",
		  "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15");
}

__attribute__((target("avx512f"))) static void avx512_block(void)
{
	/* zmm16-31 exist only with AVX-512: they test the upper components of the xstate */
	__asm__ volatile(
		"vbroadcastsd %[one], %%zmm31\n"
		"vmovapd 0(%[in]), %%zmm16\n vmovapd 64(%[in]), %%zmm17\n vmovapd 128(%[in]), %%zmm18\n"
		"vmovapd 192(%[in]), %%zmm19\n vmovapd 256(%[in]), %%zmm20\n vmovapd 320(%[in]), %%zmm21\n"
		"mov %[n], %%rcx\n"
		"1:\n"
		"vaddpd %%zmm31, %%zmm16, %%zmm16\n vaddpd %%zmm31, %%zmm17, %%zmm17\n"
		"vaddpd %%zmm31, %%zmm18, %%zmm18\n vaddpd %%zmm31, %%zmm19, %%zmm19\n"
		"vaddpd %%zmm31, %%zmm20, %%zmm20\n vaddpd %%zmm31, %%zmm21, %%zmm21\n"
		"dec %%rcx\n jnz 1b\n"
		"vmovapd %%zmm16, 0(%[o])\n vmovapd %%zmm17, 64(%[o])\n vmovapd %%zmm18, 128(%[o])\n"
		"vmovapd %%zmm19, 192(%[o])\n vmovapd %%zmm20, 256(%[o])\n vmovapd %%zmm21, 320(%[o])\n"
		"vzeroupper\n"
		:
		: [in] "r"(init512), [o] "r"(out512), [n] "r"(ITERS / 2), [one] "m"(one)
		: "rcx", "memory", "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm31");
}

static unsigned get_mxcsr(void)
{
	unsigned v;
	__asm__ volatile("stmxcsr %0" : "=m"(v));
	return v;
}

static void set_mxcsr(unsigned v)
{
	__asm__ volatile("ldmxcsr %0" : : "m"(v));
}

static int check(long block, int wide)
{
	char msg[256];

	for (int k = 0; k < 14; k++)
		for (int l = 0; l < 4; l++)
			if (out[k][l] != init[k][l] + ITERS) {
				snprintf(msg, sizeof msg, "fpu BAD block %ld ymm%d lane %d: %.3f, want %.3f\n", block, k,
					 l, out[k][l], init[k][l] + ITERS);
				report(msg);
				return -1;
			}
	for (int k = 0; wide && k < 6; k++)
		for (int l = 0; l < 8; l++)
			if (out512[k][l] != init512[k][l] + ITERS / 2) {
				snprintf(msg, sizeof msg, "fpu BAD block %ld zmm%d lane %d: %.3f\n", block, 16 + k, l,
					 out512[k][l]);
				report(msg);
				return -1;
			}
	if ((get_mxcsr() & ~0x3fu) != MXCSR_RZ) {
		snprintf(msg, sizeof msg, "fpu BAD block %ld mxcsr %#x\n", block, get_mxcsr());
		report(msg);
		return -1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: fpu OUTFILE\n");
		return 2;
	}
	outfile = argv[1];
	int wide = __builtin_cpu_supports("avx512f");
	struct sigaction sa = { .sa_handler = on_usr1 };
	sigaction(SIGUSR1, &sa, NULL);
	set_mxcsr(MXCSR_RZ);
	printf("READY pid=%d avx512=%d\n", getpid(), wide);
	fflush(stdout);
	struct timespec ms = { 0, 1000000L };
	for (long block = 0;; block++) {
		for (int k = 0; k < 16; k++)
			for (int l = 0; l < 8; l++) {
				if (l < 4)
					init[k][l] = block * 1000.0 + k * 10.0 + l * 0.25;
				init512[k][l] = block * 2000.0 + k * 20.0 + l * 0.125;
			}
		avx_block();
		if (wide)
			avx512_block();
		if (check(block, wide))
			return 1;
		if (go) {
			char msg[64];
			go = 0;
			snprintf(msg, sizeof msg, "fpu ok blocks=%ld\n", block + 1);
			report(msg);
		}
		nanosleep(&ms, NULL);
	}
}

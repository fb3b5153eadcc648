/* bench-forkexec — the cold-start baselines: fork + exec + wait of a program, timed from
 * before fork() to waitpid() returning, with the child's stdout/stderr on /dev/null.
 * Prints one JSON object with the same fields as bench-loadgen.
 *
 *   bench-forkexec --runs N [--warmup W] [--samples-out FILE] -- PROGRAM [ARGS...]
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int cmp(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

/* Nearest-rank percentile over sorted samples. */
static double pct(const double* s, int n, double p) {
  int rank = (int)(p / 100.0 * n + 0.999999);
  if (rank < 1) rank = 1;
  if (rank > n) rank = n;
  return s[rank - 1];
}

int main(int argc, char** argv) {
  int runs = 20, warmup = 2, i;
  const char* samples_out = NULL;
  for (i = 1; i < argc; ++i) {
    if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--warmup") && i + 1 < argc) warmup = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--samples-out") && i + 1 < argc) samples_out = argv[++i];
    else if (!strcmp(argv[i], "--")) { ++i; break; }
    else break;
  }
  if (i >= argc || runs < 1) {
    fprintf(stderr, "usage: bench-forkexec --runs N [--warmup W] [--samples-out F] -- PROGRAM [ARGS...]\n");
    return 2;
  }
  char** child_argv = argv + i;
  double* samples = calloc((size_t)runs, sizeof(double));
  int errors = 0;
  const double t_start = now_us();
  for (int k = -warmup; k < runs; ++k) {
    const double t0 = now_us();
    const pid_t pid = fork();
    if (pid == 0) {
      const int devnull = open("/dev/null", O_WRONLY);
      dup2(devnull, 1);
      dup2(devnull, 2);
      execv(child_argv[0], child_argv);
      _exit(127);
    }
    if (pid < 0) { perror("fork"); return 1; }
    int status = 0;
    waitpid(pid, &status, 0);
    const double t1 = now_us();
    /* The echo bootstrap exits 1 without a Runtime API; only exec failure (127) is an error. */
    if (!WIFEXITED(status) || WEXITSTATUS(status) == 127) ++errors;
    if (k >= 0) samples[k] = t1 - t0;
  }
  const double elapsed = (now_us() - t_start) / 1e6;
  if (samples_out) {
    FILE* f = fopen(samples_out, "w");
    if (f) {
      for (int k = 0; k < runs; ++k) fprintf(f, "%.1f\n", samples[k]);
      fclose(f);
    }
  }
  double sum = 0;
  for (int k = 0; k < runs; ++k) sum += samples[k];
  qsort(samples, (size_t)runs, sizeof(double), cmp);
  printf("{\"requests\":%d,\"errors\":%d,\"elapsed_s\":%.3f,\"rps\":%.1f,\"min_us\":%.1f,"
         "\"p50_us\":%.1f,\"p90_us\":%.1f,\"p99_us\":%.1f,\"p999_us\":%.1f,\"max_us\":%.1f,"
         "\"mean_us\":%.1f}\n",
         runs, errors, elapsed, runs / elapsed, samples[0], pct(samples, runs, 50),
         pct(samples, runs, 90), pct(samples, runs, 99), pct(samples, runs, 99.9),
         samples[runs - 1], sum / runs);
  free(samples);
  return errors ? 1 : 0;
}

/* The physical limit for the ioctl benchmark: the same ioctl (FIONREAD on a pipe holding 5 bytes)
 * in a plain C loop. Prints ns per call as JSON. usage: ioctl-loop ITERATIONS ROUNDS */
#include <stdio.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

static double now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e9 + ts.tv_nsec;
}

int main(int argc, char **argv) {
  long iterations = argc > 1 ? atol(argv[1]) : 1000000;
  int rounds = argc > 2 ? atoi(argv[2]) : 5;
  int fds[2];
  if (pipe(fds) != 0 || write(fds[1], "hello", 5) != 5) return 1;
  double best = 1e30;
  for (int r = 0; r < rounds; r++) {
    int n = 0;
    double t0 = now_ns();
    for (long i = 0; i < iterations; i++) {
      if (ioctl(fds[0], FIONREAD, &n) != 0 || n != 5) return 2;
    }
    double per = (now_ns() - t0) / iterations;
    if (per < best) best = per;
  }
  printf("{\"nsPerCall\": %.2f, \"iterations\": %ld, \"rounds\": %d}\n", best, iterations, rounds);
  return 0;
}

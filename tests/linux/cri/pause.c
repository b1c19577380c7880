/* pause.c - the pod sandbox's process for tests/linux/test_cri.py, in the
 * place of Kubernetes' pause image: it holds the pod's namespaces open,
 * and as PID 1 of a shared pid namespace it reaps every orphan the pod's
 * containers leave.  SIGTERM or SIGINT ends it (exit 0), as StopPodSandbox
 * asks.  Built static at test time, so the image needs nothing else.
 *
 *   pause             the sandbox
 *   pause shm KEY     make a SysV shared memory segment with that key in
 *                     this IPC namespace and print its id (the test's
 *                     proof that a pod's containers share one)
 * SPDX-License-Identifier: GPL-3.0-or-later */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/shm.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile sig_atomic_t stop;

static void
on_stop (int sig)
{
  (void) sig;
  stop = 1;
}

static void
reap (int sig)
{
  (void) sig;
  while (waitpid (-1, NULL, WNOHANG) > 0)
    ;
}

int
main (int argc, char **argv)
{
  if (argc == 3 && strcmp (argv[1], "shm") == 0)
    {
      int id = shmget ((key_t) strtol (argv[2], NULL, 0), 4096, IPC_CREAT | 0600);
      if (id < 0)
        {
          perror ("shmget");
          return 1;
        }
      printf ("%d\n", id);
      return 0;
    }
  /* Blocked but for sigsuspend, so a signal between the check of stop
   * and the wait is not lost. */
  sigset_t blocked, during;
  sigemptyset (&blocked);
  sigaddset (&blocked, SIGTERM);
  sigaddset (&blocked, SIGINT);
  sigprocmask (SIG_BLOCK, &blocked, &during);
  struct sigaction sa = { .sa_handler = on_stop };
  sigaction (SIGTERM, &sa, NULL);
  sigaction (SIGINT, &sa, NULL);
  sa.sa_handler = reap;
  sa.sa_flags = SA_NOCLDSTOP | SA_RESTART;
  sigaction (SIGCHLD, &sa, NULL);
  while (!stop)
    sigsuspend (&during);
  return 0;
}

/*
 * snapshot_cmd — `perfagent snapshot PID`: asks the agent in PID for a heap
 * snapshot over its control socket (agent/control.c) and prints where it is.
 */
#ifndef PA_SNAPSHOT_CMD_H
#define PA_SNAPSHOT_CMD_H

/* argv[0] is "snapshot".  Exit status: 0 done, 1 refused / failed, 2 usage. */
int snapshot_main(int argc, char **argv);

#endif

#ifndef CRYO_COMMANDS_H
#define CRYO_COMMANDS_H

/* Each takes argv with argv[0] = the command name; returns the process exit status. */
int cmd_dump(int argc, char **argv);
int cmd_restore(int argc, char **argv);

#endif

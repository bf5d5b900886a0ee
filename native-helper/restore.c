#include <stdio.h>
#include "commands.h"

int cmd_restore(int argc, char **argv)
{
	(void)argc; (void)argv;
	fprintf(stderr, "cryo-helper restore: not implemented yet\n");
	return 1;
}

#include <stdio.h>
#include "commands.h"

int cmd_dump(int argc, char **argv)
{
	(void)argc; (void)argv;
	fprintf(stderr, "cryo-helper dump: not implemented yet\n");
	return 1;
}

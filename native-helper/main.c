/* cryo-helper: the native half of cryo-img. It dumps a live process tree into a .cryo image and
 * restores one. Everything else (inspecting, rewriting, packing) is done by the TypeScript/Wasm side. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

static void usage(FILE *out)
{
	fprintf(out,
		"usage: cryo-helper dump --pid PID [--tree] [--kill] -o FILE|-\n"
		"       cryo-helper restore [-i FILE|-] [options]\n");
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return 2;
	}
	if (!strcmp(argv[1], "dump"))
		return cmd_dump(argc - 1, argv + 1);
	if (!strcmp(argv[1], "restore"))
		return cmd_restore(argc - 1, argv + 1);
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return 0;
	}
	fprintf(stderr, "cryo-helper: unknown command '%s'\n", argv[1]);
	usage(stderr);
	return 2;
}

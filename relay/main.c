/* main.c: authrelay's subcommand dispatch */
#include <stdio.h>

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fputs("authrelay: not built yet\n", stderr);
    return 1;
}

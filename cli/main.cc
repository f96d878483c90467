#include "cli/cli.h"

int main(int argc, char** argv) { return meshdeploy::cli::run(argc, argv); }

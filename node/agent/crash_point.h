// A test hook for the crash-restart matrix (tests/integ/crash_matrix_test.cc, docs/reliability.md):
// when the environment variable MESHDEPLOY_CRASH_AT is set to "POINT:EVENT" (for example
// "after-journal:BeforeInstall"), the node kills itself with SIGKILL the first time it reaches
// that point of that lifecycle event, as `kill -9` would. Unset (always, outside tests) it does
// nothing. Points: "after-journal" (the synced journal entry naming a script is written, the
// script not yet started) and "after-hook-exit" (the script exited, its result not yet recorded).
#pragma once

#include <string_view>

namespace meshdeploy::agent {

// SIGKILLs this process when MESHDEPLOY_CRASH_AT is "`point`:`event`"; otherwise returns.
void crash_point(std::string_view point, std::string_view event);

}  // namespace meshdeploy::agent

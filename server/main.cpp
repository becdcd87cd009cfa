// The dmarcd program. Everything lives in dmarcd_server_lib; this is the
// top where an exception that escaped a command (a bug) becomes exit 3.
#include <exception>
#include <iostream>

#include "server/cli.hpp"

int main(int argc, char** argv) {
  try {
    return dmarcd::server::RunCli(argc, argv);
  } catch (const std::exception& e) {
    std::cerr << "dmarcd: internal error: " << e.what() << "\n";
  } catch (...) {
    std::cerr << "dmarcd: internal error\n";
  }
  return 3;
}

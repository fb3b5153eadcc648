// cli/commands.hpp — `lambent deploy|invoke|logs|functions|rm|env`.
#pragma once

#include <CLI/App.hpp>

namespace lambent::cli {

// Adds the client subcommands to `app`. Each sets `exit_code` when run.
void add_client_commands(CLI::App& app, int& exit_code);

}  // namespace lambent::cli

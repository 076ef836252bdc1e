// The subcommands of rwkv-data. Each returns the process exit code and throws
// rwkv::Error for anything the user can fix.
#pragma once

#include "core/cli_args.h"

namespace rwkv::data::cli {

using rwkv::cli::Args;  // core/cli_args.h: the flag parser every subcommand uses
using rwkv::cli::Flag;

int cmd_prepare(int argc, char** argv);
int cmd_inspect(int argc, char** argv);
int cmd_verify(int argc, char** argv);
int cmd_magic_prime(int argc, char** argv);
int cmd_train_tokenizer(int argc, char** argv);

}  // namespace rwkv::data::cli

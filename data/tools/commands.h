// The subcommands of rwkv-data. Each returns the process exit code and throws
// rwkv::Error for anything the user can fix.
#pragma once

namespace rwkv::data::cli {

int cmd_prepare(int argc, char** argv);
int cmd_inspect(int argc, char** argv);
int cmd_verify(int argc, char** argv);
int cmd_magic_prime(int argc, char** argv);
int cmd_train_tokenizer(int argc, char** argv);

}  // namespace rwkv::data::cli

#include "parallel/mpi_runtime.h"

#include <chrono>
#include <cstdlib>
#include <exception>
#include <string>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/log.h"

namespace rwkv::parallel {

void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(rc, text, &length);
  RWKV_FAIL("MPI error in ", what, ": ", std::string(text, static_cast<size_t>(length)));
}

MpiRuntime::MpiRuntime(int* argc, char*** argv) {
  int initialized = 0;
  MPI_Initialized(&initialized);
  RWKV_CHECK(!initialized, "MpiRuntime: MPI is already initialised; create one MpiRuntime per process");
  int provided = 0;
  check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  if (provided < MPI_THREAD_FUNNELED) {
    MPI_Finalize();
    RWKV_FAIL("MPI provides thread level ", provided, ", below MPI_THREAD_FUNNELED (", MPI_THREAD_FUNNELED,
              ")\n  ---> HINT: use an MPI built with thread support (Open MPI is by default)");
  }
  // Errors come back as codes so they become rwkv::Error with context, and
  // run_ranks decides how the job ends.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
  MPI_Comm_size(MPI_COMM_WORLD, &size_);
  if (size_ > 1) set_log_rank(rank_);
}

MpiRuntime::~MpiRuntime() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

NodeInfo node_info(MPI_Comm comm) {
  MPI_Comm local;
  int rank = 0;
  MPI_Comm_rank(comm, &rank);
  check_mpi(MPI_Comm_split_type(comm, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &local), "MPI_Comm_split_type");
  NodeInfo info;
  MPI_Comm_rank(local, &info.local_rank);
  MPI_Comm_size(local, &info.local_size);
  MPI_Comm_free(&local);
  return info;
}

namespace {

double grace_from_env(double fallback) {
  const char* text = std::getenv("RWKV_ABORT_GRACE_S");
  if (text == nullptr || *text == '\0') return fallback;
  char* end = nullptr;
  double value = std::strtod(text, &end);
  return (end != text && value >= 0.0) ? value : fallback;
}

// "0-3,5,7-8"
std::string rank_list(const std::vector<int>& ranks) {
  std::string out;
  for (size_t i = 0; i < ranks.size();) {
    size_t j = i;
    while (j + 1 < ranks.size() && ranks[j + 1] == ranks[j] + 1) ++j;
    if (!out.empty()) out += ",";
    out += std::to_string(ranks[i]);
    if (j > i) out.append(1, '-').append(std::to_string(ranks[j]));  // not "-" + ...: GCC 12 warns falsely (-Wrestrict)
    i = j + 1;
  }
  return out;
}

// Waits up to grace seconds for every rank of `errors` to report a failure
// too (an Ibarrier on a communicator only this handler uses, so it cannot be
// confused with the job's own collectives). True when all of them did.
bool all_ranks_failed(MPI_Comm errors, double grace) {
  MPI_Request request;
  if (MPI_Ibarrier(errors, &request) != MPI_SUCCESS) return false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(grace);
  for (;;) {
    int done = 0;
    if (MPI_Test(&request, &done, MPI_STATUS_IGNORE) != MPI_SUCCESS) return false;
    if (done) return true;
    if (std::chrono::steady_clock::now() >= deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
}

// Every rank has failed: rank 0 gathers the messages and prints each distinct
// one once, with the ranks that raised it.
void report_all_failed(MPI_Comm errors, const std::string& message) {
  int rank = 0, size = 1;
  MPI_Comm_rank(errors, &rank);
  MPI_Comm_size(errors, &size);
  int length = static_cast<int>(message.size());
  std::vector<int> lengths(static_cast<size_t>(size)), displs(static_cast<size_t>(size));
  MPI_Gather(&length, 1, MPI_INT, lengths.data(), 1, MPI_INT, 0, errors);
  std::string all;
  if (rank == 0) {
    int total = 0;
    for (int r = 0; r < size; ++r) {
      displs[static_cast<size_t>(r)] = total;
      total += lengths[static_cast<size_t>(r)];
    }
    all.resize(static_cast<size_t>(total));
  }
  MPI_Gatherv(message.data(), length, MPI_CHAR, all.data(), lengths.data(), displs.data(), MPI_CHAR, 0, errors);
  if (rank != 0) return;
  std::vector<std::string> distinct;
  std::vector<std::vector<int>> raised_by;
  for (int r = 0; r < size; ++r) {
    std::string m = all.substr(static_cast<size_t>(displs[static_cast<size_t>(r)]),
                               static_cast<size_t>(lengths[static_cast<size_t>(r)]));
    size_t k = 0;
    while (k < distinct.size() && distinct[k] != m) ++k;
    if (k == distinct.size()) {
      distinct.push_back(m);
      raised_by.emplace_back();
    }
    raised_by[k].push_back(r);
  }
  for (size_t k = 0; k < distinct.size(); ++k) {
    const std::string who = raised_by[k].size() == static_cast<size_t>(size)
                                ? str_cat("all ", size, " ranks")
                                : str_cat("ranks ", rank_list(raised_by[k]));
    log_error(distinct[k], "\n  (raised on ", who, ")");
  }
}

}  // namespace

int run_ranks(const std::function<int()>& body, double grace_seconds) {
  MPI_Comm errors;
  check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &errors), "MPI_Comm_dup (error channel)");
  std::string message;
  try {
    const int code = body();
    MPI_Comm_free(&errors);
    return code;
  } catch (const std::exception& e) {
    message = e.what();
  } catch (...) {
    message = "unknown exception (not derived from std::exception)";
  }
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  if (all_ranks_failed(errors, grace_from_env(grace_seconds))) {
    report_all_failed(errors, message);
    MPI_Comm_free(&errors);
    return 1;
  }
  // Some ranks are still running (or blocked waiting for this one): nothing
  // but an abort can free them.
  log_error(message, "\n  (raised on rank ", rank, "; not every rank failed within ", grace_from_env(grace_seconds),
            " s, so the job is aborted)");
  MPI_Abort(MPI_COMM_WORLD, 1);
  return 1;  // not reached
}

}  // namespace rwkv::parallel

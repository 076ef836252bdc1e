// Order-preserving parallelism: one producer thread makes work items, N
// worker threads transform them in any order, and the calling thread consumes
// the results strictly in production order. Output therefore never depends on
// the number of threads or on timing (`rwkv-data prepare` writes identical
// shards run to run).
//
// Errors keep their order too: a failed transform is rethrown when the
// consumer reaches that item; a producer error after every earlier item has
// been consumed. Any error stops the other threads before it propagates.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <exception>
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

namespace rwkv::data {

template <typename Work, typename Result, typename Produce, typename Transform, typename Consume>
void run_ordered_pipeline(int workers, size_t max_in_flight, Produce produce, Transform transform, Consume consume) {
  struct Outcome {
    std::optional<Result> result;
    std::exception_ptr error;
  };
  std::mutex mutex;
  std::condition_variable changed;  // one condition for every state change: few threads, simple reasoning
  std::vector<std::pair<uint64_t, Work>> queue;  // FIFO: items are taken from the front index
  size_t queue_front = 0;
  std::map<uint64_t, Outcome> results;
  uint64_t produced = 0;
  uint64_t in_flight = 0;  // produced but not yet consumed: bounds memory
  bool producer_done = false;
  bool stop = false;
  std::exception_ptr producer_error;

  std::thread producer([&] {
    while (true) {
      {
        std::unique_lock<std::mutex> lock(mutex);
        changed.wait(lock, [&] { return stop || in_flight < max_in_flight; });
        if (stop) break;
      }
      Work work{};
      bool more = false;
      try {
        more = produce(work);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex);
        producer_error = std::current_exception();
        break;
      }
      std::lock_guard<std::mutex> lock(mutex);
      if (!more) break;
      queue.emplace_back(produced++, std::move(work));
      ++in_flight;
      changed.notify_all();
    }
    std::lock_guard<std::mutex> lock(mutex);
    producer_done = true;
    changed.notify_all();
  });

  std::vector<std::thread> pool;
  for (int w = 0; w < std::max(1, workers); ++w) {
    pool.emplace_back([&] {
      while (true) {
        std::pair<uint64_t, Work> item;
        {
          std::unique_lock<std::mutex> lock(mutex);
          changed.wait(lock, [&] { return stop || queue_front < queue.size() || producer_done; });
          if (stop) return;
          if (queue_front == queue.size()) return;  // producer done and nothing left
          item = std::move(queue[queue_front++]);
          if (queue_front == queue.size()) {
            queue.clear();
            queue_front = 0;
          }
        }
        Outcome outcome;
        try {
          outcome.result.emplace(transform(std::move(item.second)));
        } catch (...) {
          outcome.error = std::current_exception();
        }
        std::lock_guard<std::mutex> lock(mutex);
        results.emplace(item.first, std::move(outcome));
        changed.notify_all();
      }
    });
  }

  auto shut_down = [&] {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
      changed.notify_all();
    }
    producer.join();
    for (auto& t : pool) t.join();
  };

  try {
    for (uint64_t next = 0;; ++next) {
      Outcome outcome;
      {
        std::unique_lock<std::mutex> lock(mutex);
        changed.wait(lock, [&] { return results.count(next) > 0 || (producer_done && next == produced); });
        auto it = results.find(next);
        if (it == results.end()) break;  // everything produced has been consumed
        outcome = std::move(it->second);
        results.erase(it);
      }
      if (outcome.error) std::rethrow_exception(outcome.error);
      consume(std::move(*outcome.result));
      std::lock_guard<std::mutex> lock(mutex);
      --in_flight;
      changed.notify_all();
    }
    if (producer_error) std::rethrow_exception(producer_error);
  } catch (...) {
    shut_down();
    throw;
  }
  shut_down();
}

}  // namespace rwkv::data

// logs/log_store.hpp — function log groups and streams (CloudWatch Logs model).
// Owns: <data>/logs/, appending events without blocking, queries, retention.
// Never: HTTP, engine state. Appends are cheap and never touch the disk on the
// caller's thread: each appending thread has its own buffer, a writer thread
// drains them (no lock shared across functions or shards on the invoke path).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/result.hpp"

namespace lambent::logs {

struct LogEvent {
  std::int64_t timestamp_ms = 0;
  std::int64_t ingestion_ms = 0;
  std::string stream;
  std::string message;     // one event; never contains '\n'
  std::uint64_t line = 0;  // its position in the stream: two identical lines stay two events
};

struct StreamInfo {
  std::string name;
  std::int64_t first_event_ms = 0;
  std::int64_t last_event_ms = 0;
  std::uint64_t stored_bytes = 0;
};

struct FilterQuery {
  std::string group;
  std::vector<std::string> streams;  // empty: all
  std::string stream_prefix;
  std::int64_t start_ms = 0;  // inclusive; 0 = unbounded
  std::int64_t end_ms = 0;    // exclusive; 0 = unbounded
  std::string pattern;        // terms that must all appear; "quoted phrases" allowed
  std::size_t limit = 10000;
  std::string next_token;
  bool from_head = true;  // GetLogEvents startFromHead
};

struct FilterResult {
  std::vector<LogEvent> events;
  std::string next_token;  // empty when exhausted
  // The position after the last event returned (empty when none was): where a reader that
  // follows the stream goes on from, whether or not more events follow now.
  std::string last_cursor;
};

struct Retention {
  std::uint64_t max_group_bytes = 256ull * 1024 * 1024;  // oldest streams are dropped beyond this
};

// Thread-safe.
class LogStore {
 public:
  LogStore(std::string root, Retention retention);
  ~LogStore();  // flushes

  // One stream's names and file, resolved once by stream(); a writer that appends often
  // (an environment) keeps it, so an append copies neither name. Immutable.
  struct StreamKey {
    std::string group, stream;
    std::string dir, file;  // <root>/<encoded group>, <dir>/<encoded stream>.log
  };
  using StreamHandle = std::shared_ptr<const StreamKey>;
  StreamHandle stream_handle(const std::string& group, const std::string& stream) const;

  // Never blocks on I/O. `message` must not contain '\n' (callers split lines).
  void append(const StreamHandle& stream, std::int64_t ts_ms, std::string_view message);
  void append(const std::string& group, const std::string& stream, std::int64_t ts_ms,
              std::string_view message);
  // Blocks until every event appended before the call is on disk.
  void flush();

  Result<std::vector<std::string>> groups();
  Result<std::vector<StreamInfo>> streams(const std::string& group);
  Result<FilterResult> filter(const FilterQuery& q);

 private:
  // An event's message lives in its batch's text, so an append allocates nothing once the
  // thread's buffers have grown.
  struct Pending {
    StreamHandle key;
    std::int64_t ts;
    std::size_t offset, size;  // in Batch::text
  };
  struct Batch {
    std::vector<Pending> events;
    std::string text;
    void clear() {
      events.clear();
      text.clear();
    }
  };
  struct ThreadBuffer {
    std::mutex mu;
    Batch batch;
  };
  ThreadBuffer& local_buffer();
  void writer_loop();
  void write_batch(Batch& batch);
  void enforce_retention(const std::string& group_dir);
  std::string group_dir(const std::string& group) const;

  const std::uint64_t id_;  // keys the per-thread buffer lookup; never reused
  std::string root_;
  Retention retention_;
  std::mutex buffers_mu_;  // guards buffers_ (registration only)
  std::vector<std::unique_ptr<ThreadBuffer>> buffers_;
  std::mutex writer_mu_;
  std::condition_variable writer_cv_;
  std::condition_variable flushed_cv_;
  std::uint64_t flush_requested_ = 0, flush_done_ = 0;
  bool stop_ = false;
  std::map<std::string, std::uint64_t> bytes_since_check_;
  std::string out_;  // writer thread: one file's lines of a batch
  std::thread writer_;
};

// File-system-safe encoding of a group or stream name.
std::string encode_name(std::string_view name);
std::string decode_name(std::string_view name);

}  // namespace lambent::logs

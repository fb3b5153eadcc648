#include "logs/log_store.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <tuple>

#include "core/encoding.hpp"
#include "core/files.hpp"
#include "core/log.hpp"
#include "core/time.hpp"

namespace lambent::logs {

namespace fs = std::filesystem;

std::string encode_name(std::string_view name) {
  // percent_encode keeps '.', so "." and ".." (valid log group names) would
  // name the store's own folder or the data folder: a leading dot is encoded.
  if (name.starts_with('.')) return "%2E" + percent_encode(name.substr(1), false);
  return percent_encode(name, false);
}
std::string decode_name(std::string_view name) {
  auto d = percent_decode(name);
  return d ? *d : std::string(name);
}

namespace {
std::atomic<std::uint64_t> g_next_store_id{1};
}  // namespace

LogStore::LogStore(std::string root, Retention retention)
    : id_(g_next_store_id.fetch_add(1)), root_(std::move(root)), retention_(retention) {
  (void)make_dirs(root_);
  writer_ = std::thread([this] { writer_loop(); });
}

LogStore::~LogStore() {
  {
    std::lock_guard lock(writer_mu_);
    stop_ = true;
  }
  writer_cv_.notify_all();
  writer_.join();
}

LogStore::ThreadBuffer& LogStore::local_buffer() {
  // One buffer per (store, thread); stores are few and long-lived. Keyed by the store's id,
  // not its address: a store created where a destroyed one was must not find that one's
  // (freed) buffer.
  thread_local std::vector<std::pair<std::uint64_t, ThreadBuffer*>> t_buffers;
  for (auto& [store, buf] : t_buffers)
    if (store == id_) return *buf;
  std::lock_guard lock(buffers_mu_);
  buffers_.push_back(std::make_unique<ThreadBuffer>());
  t_buffers.emplace_back(id_, buffers_.back().get());
  return *buffers_.back();
}

LogStore::StreamHandle LogStore::stream_handle(const std::string& group,
                                               const std::string& stream) const {
  auto key = std::make_shared<StreamKey>();
  key->group = group;
  key->stream = stream;
  key->dir = group_dir(group);
  key->file = key->dir + "/" + encode_name(stream) + ".log";
  return key;
}

void LogStore::append(const StreamHandle& stream, std::int64_t ts_ms, std::string_view message) {
  auto& buf = local_buffer();
  std::lock_guard lock(buf.mu);  // contended only by the writer's swap
  auto& b = buf.batch;
  b.events.push_back(Pending{stream, ts_ms, b.text.size(), message.size()});
  b.text.append(message);
}

void LogStore::append(const std::string& group, const std::string& stream, std::int64_t ts_ms,
                      std::string_view message) {
  append(stream_handle(group, stream), ts_ms, message);
}

void LogStore::flush() {
  std::unique_lock lock(writer_mu_);
  const auto ticket = ++flush_requested_;
  writer_cv_.notify_all();
  flushed_cv_.wait(lock, [&] { return flush_done_ >= ticket || stop_; });
}

std::string LogStore::group_dir(const std::string& group) const {
  return root_ + "/" + encode_name(group);
}

void LogStore::writer_loop() {
  Batch batch;
  for (;;) {
    std::uint64_t ticket;
    bool stopping;
    {
      std::unique_lock lock(writer_mu_);
      writer_cv_.wait_for(lock, std::chrono::milliseconds(200),
                          [&] { return stop_ || flush_requested_ > flush_done_; });
      ticket = flush_requested_;
      stopping = stop_;
    }
    {
      std::vector<ThreadBuffer*> bufs;
      {
        std::lock_guard lock(buffers_mu_);
        for (auto& b : buffers_) bufs.push_back(b.get());
      }
      for (auto* b : bufs) {
        std::lock_guard lock(b->mu);
        auto& in = b->batch;
        if (batch.events.empty()) {
          // The thread gets the buffers of the batch written last, with their capacity.
          std::swap(batch, in);
        } else {
          const std::size_t base = batch.text.size();
          batch.text.append(in.text);
          for (auto& e : in.events)
            batch.events.push_back(Pending{std::move(e.key), e.ts, base + e.offset, e.size});
        }
        in.clear();
      }
    }
    if (!batch.events.empty()) write_batch(batch);
    batch.clear();
    {
      std::lock_guard lock(writer_mu_);
      flush_done_ = std::max(flush_done_, ticket);
    }
    flushed_cv_.notify_all();
    if (stopping) return;
  }
}

namespace {

// Appends all of `data` to `path`, creating the file (and its folder) when missing.
bool append_file(const std::string& dir, const std::string& path, std::string_view data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
  if (fd < 0 && errno == ENOENT) {
    (void)make_dirs(dir);
    fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0666);
  }
  if (fd < 0) return false;
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      const int saved = errno;
      ::close(fd);
      errno = saved;
      return false;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  ::close(fd);
  return true;
}

}  // namespace

void LogStore::write_batch(Batch& batch) {
  auto& events = batch.events;
  // Group by file, keep per-file order (each thread's buffer is ordered). Events of one
  // environment share a key, so most comparisons end at the pointer.
  std::stable_sort(events.begin(), events.end(), [](const Pending& a, const Pending& b) {
    if (a.key == b.key) return false;
    return std::tie(a.key->group, a.key->stream) < std::tie(b.key->group, b.key->stream);
  });
  const auto ingestion = unix_ms_now();
  char ingestion_text[24];
  ingestion_text[0] = '\t';
  char* ingestion_end =
      std::to_chars(ingestion_text + 1, ingestion_text + sizeof(ingestion_text) - 1, ingestion).ptr;
  *ingestion_end++ = '\t';
  std::size_t i = 0;
  while (i < events.size()) {
    const StreamKey& key = *events[i].key;
    out_.clear();
    for (; i < events.size() &&
           (events[i].key.get() == &key ||
            (events[i].key->group == key.group && events[i].key->stream == key.stream));
         ++i) {
      char ts[24];
      out_.append(ts, std::to_chars(ts, ts + sizeof(ts), events[i].ts).ptr);
      out_.append(ingestion_text, ingestion_end);
      out_.append(batch.text, events[i].offset, events[i].size);
      out_ += '\n';
    }
    if (!append_file(key.dir, key.file, out_))
      LAMBENT_LOG_RATELIMITED(warn, "logs", "cannot write {}: {}", key.file, std::strerror(errno));
    auto& since = bytes_since_check_[key.dir];
    since += out_.size();
    if (since > retention_.max_group_bytes / 16) {
      since = 0;
      enforce_retention(key.dir);
    }
  }
  if (out_.capacity() > (1u << 20)) out_ = std::string();
}

void LogStore::enforce_retention(const std::string& dir) {
  std::vector<std::pair<fs::file_time_type, fs::path>> files;
  std::uint64_t total = 0;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    // Only the group's stream files: nothing else is the store's to delete.
    if (!e.is_regular_file(ec) || e.path().extension() != ".log") continue;
    total += e.file_size(ec);
    files.emplace_back(e.last_write_time(ec), e.path());
  }
  if (total <= retention_.max_group_bytes) return;
  std::sort(files.begin(), files.end());
  for (const auto& [t, p] : files) {
    if (total <= retention_.max_group_bytes * 3 / 4) break;
    total -= fs::file_size(p, ec);
    fs::remove(p, ec);
  }
}

Result<std::vector<std::string>> LogStore::groups() {
  flush();
  std::vector<std::string> out;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(root_, ec))
    if (e.is_directory(ec)) out.push_back(decode_name(e.path().filename().string()));
  std::sort(out.begin(), out.end());
  return out;
}

namespace {

bool parse_line(const std::string& line, LogEvent& ev) {
  const auto t1 = line.find('\t');
  if (t1 == std::string::npos) return false;
  const auto t2 = line.find('\t', t1 + 1);
  if (t2 == std::string::npos) return false;
  ev.timestamp_ms = std::strtoll(line.c_str(), nullptr, 10);
  ev.ingestion_ms = std::strtoll(line.c_str() + t1 + 1, nullptr, 10);
  ev.message = line.substr(t2 + 1);
  return true;
}

std::vector<std::string> pattern_terms(const std::string& pattern) {
  std::vector<std::string> terms;
  std::size_t i = 0;
  while (i < pattern.size()) {
    if (pattern[i] == ' ') {
      ++i;
      continue;
    }
    if (pattern[i] == '"') {
      const auto end = pattern.find('"', i + 1);
      terms.push_back(
          pattern.substr(i + 1, end == std::string::npos ? std::string::npos : end - i - 1));
      i = end == std::string::npos ? pattern.size() : end + 1;
    } else {
      const auto end = pattern.find(' ', i);
      terms.push_back(pattern.substr(i, end == std::string::npos ? std::string::npos : end - i));
      i = end == std::string::npos ? pattern.size() : end;
    }
  }
  return terms;
}

}  // namespace

namespace {

// The first and the last complete line of a log file, read from its two ends: a stream's
// first and last event times cost two small reads however large the file is. A last line
// longer than the tail read is found by reading further back.
bool first_and_last_lines(const std::string& path, std::string& first, std::string& last) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  struct stat st {};
  bool ok = ::fstat(fd, &st) == 0 && st.st_size > 0;
  const auto size = ok ? static_cast<std::uint64_t>(st.st_size) : 0;
  auto read_at = [&](std::uint64_t off, std::size_t n, std::string& out) {
    out.resize(n);
    std::size_t got = 0;
    while (got < n) {
      const ssize_t r = ::pread(fd, out.data() + got, n - got, static_cast<off_t>(off + got));
      if (r <= 0) break;
      got += static_cast<std::size_t>(r);
    }
    out.resize(got);
  };
  std::string chunk;
  for (std::uint64_t want = 4096; ok; want *= 4) {  // the first line
    read_at(0, static_cast<std::size_t>(std::min(want, size)), chunk);
    const auto nl = chunk.find('\n');
    if (nl != std::string::npos) {
      first = chunk.substr(0, nl);
      break;
    }
    // The whole file read (or what is left of it): one line with no end yet, being
    // written, is not an event.
    if (want >= size) ok = false;
  }
  // Appends write whole lines, so a file ends with '\n'; whatever follows the last one is a
  // line still being written and is left out, as getline-and-parse would have.
  for (std::uint64_t want = 16384; ok; want *= 4) {
    const std::uint64_t from = size > want ? size - want : 0;
    read_at(from, static_cast<std::size_t>(size - from), chunk);
    const auto end = chunk.rfind('\n');
    if (end == std::string::npos) {
      ok = from > 0;  // no complete line at all
      continue;
    }
    const auto begin = end == 0 ? std::string::npos : chunk.rfind('\n', end - 1);
    if (begin == std::string::npos && from > 0) continue;  // the line starts further back
    last = chunk.substr(begin == std::string::npos ? 0 : begin + 1,
                        end - (begin == std::string::npos ? 0 : begin + 1));
    break;
  }
  ::close(fd);
  return ok;
}

// Where a query resumes: the (timestamp, stream, line) of the last event it returned.
// Events are ordered by timestamp, then stream name, then position in the stream, as
// CloudWatch interleaves streams. Tokens are opaque to clients: "<ts>-<line>-<stream>".
struct Cursor {
  std::int64_t ts = 0;
  std::uint64_t line = 0;
  std::string stream;
};

std::optional<Cursor> parse_cursor(const std::string& token) {
  Cursor c;
  const auto d1 = token.find('-');
  const auto d2 = d1 == std::string::npos ? d1 : token.find('-', d1 + 1);
  if (d2 == std::string::npos) return std::nullopt;
  const auto* b = token.data();
  const auto ts = std::from_chars(b, b + d1, c.ts);
  const auto line = std::from_chars(b + d1 + 1, b + d2, c.line);
  if (d1 == 0 || ts.ec != std::errc() || ts.ptr != b + d1 || c.ts < 0 || line.ec != std::errc() ||
      line.ptr != b + d2 || d2 == d1 + 1)
    return std::nullopt;
  c.stream = token.substr(d2 + 1);
  return c;
}

}  // namespace

Result<std::vector<StreamInfo>> LogStore::streams(const std::string& group) {
  flush();
  const std::string dir = group_dir(group);
  std::error_code ec;
  if (!fs::exists(dir, ec)) return fail(Errc::kNotFound, "The specified log group does not exist.");
  std::vector<StreamInfo> out;
  std::string first, last;
  LogEvent ev;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const auto fname = e.path().filename().string();
    if (!e.is_regular_file(ec) || !fname.ends_with(".log")) continue;
    StreamInfo si;
    si.name = decode_name(fname.substr(0, fname.size() - 4));
    si.stored_bytes = e.file_size(ec);
    if (first_and_last_lines(e.path().string(), first, last)) {
      if (parse_line(first, ev)) si.first_event_ms = ev.timestamp_ms;
      if (parse_line(last, ev)) si.last_event_ms = ev.timestamp_ms;
    }
    out.push_back(std::move(si));
  }
  std::sort(out.begin(), out.end(),
            [](const StreamInfo& a, const StreamInfo& b) { return a.name < b.name; });
  return out;
}

Result<FilterResult> LogStore::filter(const FilterQuery& q) {
  auto streams_r = streams(q.group);
  if (!streams_r) return fail(std::move(streams_r.error()));
  const auto& streams = *streams_r;  // sorted by name: an index orders like the name
  if (q.limit == 0) return FilterResult{};
  std::optional<Cursor> after;
  if (!q.next_token.empty() && q.next_token != "0") {
    after = parse_cursor(q.next_token);
    if (!after) return fail(Errc::kInvalidParameter, "The specified nextToken is invalid.");
  }
  // Forward (from the head, or after a token): the `limit` first events, plus one to tell
  // whether more follow. From the tail without a token: the `limit` last ones. Either way
  // only that many are held, never the whole group.
  const bool tail = !q.from_head && !after;
  const std::size_t keep = tail ? q.limit : q.limit + 1;
  struct Found {
    std::size_t stream;  // index in `streams`: orders like the name
    LogEvent ev;
  };
  auto before = [](const Found& a, const Found& b) {
    return std::tie(a.ev.timestamp_ms, a.stream, a.ev.line) <
           std::tie(b.ev.timestamp_ms, b.stream, b.ev.line);
  };
  // A heap whose top is the event to drop first: the latest going forward, the earliest
  // from the tail.
  auto worse = [&](const Found& a, const Found& b) { return tail ? before(b, a) : before(a, b); };
  std::vector<Found> heap;
  const auto terms = pattern_terms(q.pattern);
  const std::string dir = group_dir(q.group);
  std::string line;
  for (std::size_t si = 0; si < streams.size(); ++si) {
    const auto& info = streams[si];
    if (!q.streams.empty() &&
        std::find(q.streams.begin(), q.streams.end(), info.name) == q.streams.end())
      continue;
    if (!q.stream_prefix.empty() && !info.name.starts_with(q.stream_prefix)) continue;
    if (q.start_ms && info.last_event_ms < q.start_ms) continue;
    if (q.end_ms && info.first_event_ms >= q.end_ms) continue;
    std::ifstream in(dir + "/" + encode_name(info.name) + ".log");
    Found f{si, {}};
    for (std::uint64_t n = 0; std::getline(in, line); ++n) {
      if (in.eof()) break;  // no newline yet: a line still being written is not an event
      // The timestamp decides most rejections before the message is copied.
      std::int64_t ts = 0;
      if (std::from_chars(line.data(), line.data() + line.size(), ts).ec != std::errc()) continue;
      f.ev.timestamp_ms = ts;
      f.ev.line = n;
      if (q.start_ms && ts < q.start_ms) continue;
      if (q.end_ms && ts >= q.end_ms) continue;
      if (after && std::tie(ts, info.name, n) <= std::tie(after->ts, after->stream, after->line))
        continue;
      if (heap.size() == keep && !worse(f, heap.front())) continue;
      if (!parse_line(line, f.ev)) continue;
      bool match = true;
      for (const auto& t : terms)
        if (f.ev.message.find(t) == std::string::npos) match = false;
      if (!match) continue;
      f.ev.stream = info.name;
      heap.push_back(std::move(f));
      std::push_heap(heap.begin(), heap.end(), worse);
      if (heap.size() > keep) {
        std::pop_heap(heap.begin(), heap.end(), worse);
        heap.pop_back();
      }
      f = Found{si, {}};
    }
  }
  std::sort(heap.begin(), heap.end(), before);
  FilterResult out;
  const bool more = !tail && heap.size() > q.limit;
  if (more) heap.pop_back();
  if (!heap.empty()) {
    const Found& last = heap.back();
    out.last_cursor = std::to_string(last.ev.timestamp_ms) + "-" + std::to_string(last.ev.line) +
                      "-" + streams[last.stream].name;
    if (more || tail) out.next_token = out.last_cursor;
  }
  for (auto& f : heap) out.events.push_back(std::move(f.ev));
  return out;
}

}  // namespace lambent::logs

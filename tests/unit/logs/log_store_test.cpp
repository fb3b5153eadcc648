// The log store's files and queries: appends from several threads and streams land in the
// right file, in order, whichever way the stream was named (handle or group/stream names).
#include "logs/log_store.hpp"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "fakes/temp_dir.hpp"

namespace lambent::logs {
namespace {

using lambent::testing::TempDir;

std::vector<std::string> messages(LogStore& store, const std::string& group,
                                  const std::string& stream) {
  FilterQuery q;
  q.group = group;
  q.streams = {stream};
  auto r = store.filter(q);
  EXPECT_TRUE(r.has_value());
  std::vector<std::string> out;
  if (r)
    for (auto& e : r->events) out.push_back(e.message);
  return out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

TEST(LogStore, WritesEachStreamsLinesInOrder) {
  TempDir dir;
  LogStore store(dir.path(), Retention{});
  const auto a = store.stream_handle("/aws/lambda/f", "2026/01/01/[$LATEST]aa");
  const auto b = store.stream_handle("/aws/lambda/g", "2026/01/01/[$LATEST]bb");
  store.append(a, 1000, "START a");
  store.append(b, 1001, "START b");
  store.append("/aws/lambda/f", "2026/01/01/[$LATEST]aa", 1002, "by name");
  store.append(a, 1003, "");
  store.append(b, 1004, "END b");
  store.append(a, 1005, "END a");
  store.flush();
  EXPECT_EQ(messages(store, "/aws/lambda/f", "2026/01/01/[$LATEST]aa"),
            (std::vector<std::string>{"START a", "by name", "", "END a"}));
  EXPECT_EQ(messages(store, "/aws/lambda/g", "2026/01/01/[$LATEST]bb"),
            (std::vector<std::string>{"START b", "END b"}));
}

TEST(LogStore, LineFormatIsTimestampIngestionMessage) {
  TempDir dir;
  LogStore store(dir.path(), Retention{});
  const auto s = store.stream_handle("g", "s/1");
  store.append(s, 1234567890123, "hello\tworld");
  store.flush();
  const auto text = read_file(s->file);
  ASSERT_TRUE(text.starts_with("1234567890123\t")) << text;
  ASSERT_TRUE(text.ends_with("\thello\tworld\n")) << text;
  const auto ingestion = text.substr(14, text.size() - 14 - 13);
  EXPECT_FALSE(ingestion.empty());
  EXPECT_EQ(ingestion.find_first_not_of("0123456789"), std::string::npos) << ingestion;
  EXPECT_EQ(s->file, dir.path() + "/g/s%2F1.log");
}

TEST(LogStore, KeepsEachThreadsOrderAcrossThreads) {
  TempDir dir;
  LogStore store(dir.path(), Retention{});
  const auto s = store.stream_handle("g", "shared");
  constexpr int kThreads = 4, kLines = 500;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kLines; ++i)
        store.append(s, i, std::to_string(t) + ":" + std::to_string(i));
    });
  for (auto& t : threads) t.join();
  store.flush();
  const auto got = messages(store, "g", "shared");
  ASSERT_EQ(got.size(), static_cast<std::size_t>(kThreads * kLines));
  std::vector<int> next(kThreads, 0);
  for (const auto& m : got) {
    const int t = std::stoi(m.substr(0, m.find(':')));
    EXPECT_EQ(m, std::to_string(t) + ":" + std::to_string(next[static_cast<std::size_t>(t)]));
    ++next[static_cast<std::size_t>(t)];
  }
}

TEST(LogStore, RecreatesAGroupFolderRemovedUnderIt) {
  TempDir dir;
  LogStore store(dir.path(), Retention{});
  const auto s = store.stream_handle("g", "s");
  store.append(s, 1, "one");
  store.flush();
  std::filesystem::remove_all(dir / "g");
  store.append(s, 2, "two");
  store.flush();
  EXPECT_EQ(messages(store, "g", "s"), (std::vector<std::string>{"two"}));
}

TEST(LogStore, DotGroupsStayInsideTheStore) {
  // "." and ".." are valid log group names; as folder names they would be the store itself
  // and the data folder above it.
  TempDir dir;
  const std::filesystem::path top(dir.path()), root = top / "logs";
  LogStore store(root.string(), Retention{});
  for (const std::string g : {".", "..", ".hidden"}) store.append(g, "s", 1, "in " + g);
  store.flush();
  EXPECT_FALSE(std::filesystem::exists(root / "s.log"));
  EXPECT_FALSE(std::filesystem::exists(top / "s.log"));
  for (const std::string g : {".", "..", ".hidden"})
    EXPECT_EQ(messages(store, g, "s"), (std::vector<std::string>{"in " + g})) << g;
  auto groups = store.groups();
  ASSERT_TRUE(groups.has_value());
  EXPECT_EQ(*groups, (std::vector<std::string>{".", "..", ".hidden"}));
}

TEST(LogStore, RetentionRemovesOnlyStreamFiles) {
  TempDir dir;
  LogStore store(dir.path(), Retention{.max_group_bytes = 4096});
  const std::filesystem::path g = std::filesystem::path(dir.path()) / "g";
  std::filesystem::create_directories(g);
  std::ofstream(g / "not-a-stream.db") << std::string(8192, 'x');
  const std::string line(100, 'y');
  for (int i = 0; i < 400; ++i) {
    store.append("g", "s" + std::to_string(i % 4), i, line);
    if (i % 50 == 0) store.flush();
  }
  store.flush();
  EXPECT_TRUE(std::filesystem::exists(g / "not-a-stream.db"));
  std::uint64_t stream_bytes = 0;
  for (const auto& e : std::filesystem::directory_iterator(g))
    if (e.path().extension() == ".log") stream_bytes += e.file_size();
  EXPECT_LT(stream_bytes, 400u * (line.size() + 30));  // retention did remove streams
}

// Queries: events of several streams in timestamp order, held a page at a time.
struct Page {
  std::vector<std::string> messages;
  std::string next_token;
};

Page query(LogStore& store, FilterQuery q) {
  q.group = "g";
  auto r = store.filter(q);
  EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().message);
  Page p;
  if (r) {
    for (auto& e : r->events) p.messages.push_back(e.stream + ":" + e.message);
    p.next_token = r->next_token;
  }
  return p;
}

// Two streams written out of step: a 1/2/3/5/8, b 2/3/4/8/9 (ms).
void two_streams(LogStore& store) {
  for (int ts : {1, 2, 3, 5, 8}) store.append("g", "a", ts, "a" + std::to_string(ts));
  for (int ts : {2, 3, 4, 8, 9}) store.append("g", "b", ts, "b" + std::to_string(ts));
  store.flush();
}

const std::vector<std::string> kAllInOrder = {"a:a1", "a:a2", "b:b2", "a:a3", "b:b3",
                                              "b:b4", "a:a5", "a:a8", "b:b8", "b:b9"};

TEST(LogQuery, InterleavesStreamsByTimestampThenStreamName) {
  TempDir dir;
  LogStore store(dir.path(), Retention{});
  two_streams(store);
  const auto all = query(store, {});
  EXPECT_EQ(all.messages, kAllInOrder);
  EXPECT_TRUE(all.next_token.empty());
}

TEST(LogQuery, PagesForwardThroughEveryEventOnce) {
  TempDir dir;
  LogStore store(dir.path(), Retention{});
  two_streams(store);
  std::vector<std::string> got;
  FilterQuery q;
  q.limit = 3;
  int pages = 0;
  do {
    const auto page = query(store, q);
    EXPECT_LE(page.messages.size(), 3u);
    got.insert(got.end(), page.messages.begin(), page.messages.end());
    q.next_token = page.next_token;
    ASSERT_LT(++pages, 10);
  } while (!q.next_token.empty());
  EXPECT_EQ(pages, 4);
  EXPECT_EQ(got, kAllInOrder);
}

TEST(LogQuery, TailReturnsTheLastEventsAndItsTokenFollowsNewOnes) {
  TempDir dir;
  LogStore store(dir.path(), Retention{});
  two_streams(store);
  FilterQuery q;
  q.limit = 2;
  q.from_head = false;
  const auto tail = query(store, q);
  EXPECT_EQ(tail.messages, (std::vector<std::string>{"b:b8", "b:b9"}));
  ASSERT_FALSE(tail.next_token.empty());
  q.next_token = tail.next_token;
  EXPECT_TRUE(query(store, q).messages.empty());  // nothing newer yet
  store.append("g", "a", 10, "a10");
  store.flush();
  EXPECT_EQ(query(store, q).messages, (std::vector<std::string>{"a:a10"}));
}

TEST(LogQuery, TimeBoundsAndPatternSelect) {
  TempDir dir;
  LogStore store(dir.path(), Retention{});
  two_streams(store);
  store.append("g", "c", 100, "late only");  // a stream wholly after the window
  store.flush();
  FilterQuery q;
  q.start_ms = 3;
  q.end_ms = 8;  // exclusive
  EXPECT_EQ(query(store, q).messages, (std::vector<std::string>{"a:a3", "b:b3", "b:b4", "a:a5"}));
  q.pattern = "b";
  EXPECT_EQ(query(store, q).messages, (std::vector<std::string>{"b:b3", "b:b4"}));
  FilterQuery late;
  late.start_ms = 50;
  EXPECT_EQ(query(store, late).messages, (std::vector<std::string>{"c:late only"}));
}

TEST(LogQuery, IdenticalLinesAreEventsOfTheirOwn) {
  TempDir dir;
  LogStore store(dir.path(), Retention{});
  for (int i = 0; i < 3; ++i) store.append("g", "s", 7, "same");
  store.flush();
  FilterQuery q;
  q.group = "g";
  auto r = store.filter(q);
  ASSERT_TRUE(r.has_value());
  ASSERT_EQ(r->events.size(), 3u);
  EXPECT_EQ(r->events[0].line, 0u);
  EXPECT_EQ(r->events[1].line, 1u);
  EXPECT_EQ(r->events[2].line, 2u);
}

TEST(LogQuery, AGarbledTokenIsRefused) {
  TempDir dir;
  LogStore store(dir.path(), Retention{});
  two_streams(store);
  for (const char* token : {"not-a-token", "--a", "-5-1-a", "5--a", "5-1", "x5-1-a"}) {
    FilterQuery q;
    q.group = "g";
    q.next_token = token;
    EXPECT_FALSE(store.filter(q).has_value()) << token;
  }
}

// Lambda's stream names hold '/', '[', '$' and may hold '-': a token names its stream last.
TEST(LogQuery, PagesOneByOneThroughStreamsWithDashesAndSlashes) {
  TempDir dir;
  LogStore store(dir.path(), Retention{});
  const std::string a = "2026/11/27/[$LATEST]a-b-c", b = "2026/11/27/[$LATEST]a-b-d";
  store.append("g", a, 1, "one");
  store.append("g", b, 1, "two");
  store.append("g", a, 2, "three");
  store.flush();
  FilterQuery q;
  q.limit = 1;
  std::vector<std::string> got;
  for (int i = 0; i < 5; ++i) {
    const auto page = query(store, q);
    got.insert(got.end(), page.messages.begin(), page.messages.end());
    if (page.next_token.empty()) break;
    q.next_token = page.next_token;
  }
  EXPECT_EQ(got, (std::vector<std::string>{a + ":one", b + ":two", a + ":three"}));
}

// A reader that follows a stream goes on from the last event returned, whether or not more
// follow now, so polling from there never returns an event twice.
TEST(LogQuery, TheLastCursorFollowsTheLastEventReturned) {
  TempDir dir;
  LogStore store(dir.path(), Retention{});
  two_streams(store);
  FilterQuery q;
  q.group = "g";
  q.streams = {"a"};
  auto all = store.filter(q);
  ASSERT_TRUE(all.has_value());
  EXPECT_EQ(all->events.size(), 5u);
  EXPECT_TRUE(all->next_token.empty());  // nothing more now
  ASSERT_FALSE(all->last_cursor.empty());
  q.next_token = all->last_cursor;
  auto again = store.filter(q);
  ASSERT_TRUE(again.has_value());
  EXPECT_TRUE(again->events.empty());
  EXPECT_TRUE(again->last_cursor.empty());
}

// The writer appends whole lines, but a reader may see a file whose last line is still
// being written: it is not an event yet, for queries or for the stream's times.
TEST(LogQuery, ALineWithoutItsNewlineIsNotAnEventYet) {
  TempDir dir;
  LogStore store(dir.path(), Retention{});
  const auto s = store.stream_handle("g", "s");
  store.append(s, 5, "done");
  store.flush();
  {
    std::ofstream out(s->file, std::ios::app);
    out << "9\t9\thalf a li";
  }
  auto streams = store.streams("g");
  ASSERT_TRUE(streams.has_value());
  ASSERT_EQ(streams->size(), 1u);
  EXPECT_EQ((*streams)[0].first_event_ms, 5);
  EXPECT_EQ((*streams)[0].last_event_ms, 5);
  EXPECT_EQ(messages(store, "g", "s"), (std::vector<std::string>{"done"}));
}

TEST(LogQuery, StreamTimesComeFromTheFirstAndLastLinesHoweverLong) {
  TempDir dir;
  LogStore store(dir.path(), Retention{});
  store.append("g", "short", 5, "one");
  store.append("g", "short", 7, "two");
  // Lines longer than the reads from each end of the file.
  store.append("g", "long", 11, std::string(20000, 'x'));
  for (int i = 0; i < 50; ++i) store.append("g", "long", 12 + i, "mid");
  store.append("g", "long", 99, std::string(300000, 'y'));
  store.flush();
  auto streams = store.streams("g");
  ASSERT_TRUE(streams.has_value());
  ASSERT_EQ(streams->size(), 2u);
  EXPECT_EQ((*streams)[0].name, "long");
  EXPECT_EQ((*streams)[0].first_event_ms, 11);
  EXPECT_EQ((*streams)[0].last_event_ms, 99);
  EXPECT_EQ((*streams)[1].name, "short");
  EXPECT_EQ((*streams)[1].first_event_ms, 5);
  EXPECT_EQ((*streams)[1].last_event_ms, 7);
}

}  // namespace
}  // namespace lambent::logs

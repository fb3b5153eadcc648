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

}  // namespace
}  // namespace lambent::logs

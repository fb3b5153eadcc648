// The stored document and the SQLite store: what is written comes back, and
// survives closing and reopening the database.
#include <sys/stat.h>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "fakes/temp_dir.hpp"
#include "registry/store.hpp"

namespace lambent::registry {
namespace {

using ::testing::HasSubstr;

FunctionConfig full_config(std::string name, std::string version) {
  FunctionConfig c;
  c.name = std::move(name);
  c.version = std::move(version);
  c.runtime = "nodejs20.x";
  c.handler = "index.handler";
  c.role = "arn:aws:iam::123456789012:role/r";
  c.description = "desc \"quoted\" ünïcode";
  c.timeout_s = 42;
  c.memory_mb = 1769;
  c.ephemeral_mb = 2048;
  c.environment = {{"A_KEY", "1"}, {"B_KEY", "line\nbreak"}};
  c.architecture = "x86_64";
  c.tracing_mode = "Active";
  c.log_format = "JSON";
  c.application_log_level = "DEBUG";
  c.system_log_level = "WARN";
  c.log_group = "/custom/g";
  c.layers = {"layer-a"};
  c.network_egress = true;
  c.code_sha256_hex = std::string(64, 'a');
  c.code_sha256 = "qqqq=";
  c.code_size = 123456789012ull;
  c.revision_id = "rev-1";
  c.last_modified_ms = 1700000000123;
  c.description_of_version = "first";
  return c;
}

void expect_same(const FunctionConfig& a, const FunctionConfig& b) {
  EXPECT_EQ(a.name, b.name);
  EXPECT_EQ(a.version, b.version);
  EXPECT_EQ(a.runtime, b.runtime);
  EXPECT_EQ(a.handler, b.handler);
  EXPECT_EQ(a.role, b.role);
  EXPECT_EQ(a.description, b.description);
  EXPECT_EQ(a.timeout_s, b.timeout_s);
  EXPECT_EQ(a.memory_mb, b.memory_mb);
  EXPECT_EQ(a.ephemeral_mb, b.ephemeral_mb);
  EXPECT_EQ(a.environment, b.environment);
  EXPECT_EQ(a.architecture, b.architecture);
  EXPECT_EQ(a.tracing_mode, b.tracing_mode);
  EXPECT_EQ(a.log_format, b.log_format);
  EXPECT_EQ(a.application_log_level, b.application_log_level);
  EXPECT_EQ(a.system_log_level, b.system_log_level);
  EXPECT_EQ(a.log_group, b.log_group);
  EXPECT_EQ(a.layers, b.layers);
  EXPECT_EQ(a.network_egress, b.network_egress);
  EXPECT_EQ(a.code_sha256_hex, b.code_sha256_hex);
  EXPECT_EQ(a.code_sha256, b.code_sha256);
  EXPECT_EQ(a.code_size, b.code_size);
  EXPECT_EQ(a.revision_id, b.revision_id);
  EXPECT_EQ(a.last_modified_ms, b.last_modified_ms);
  EXPECT_EQ(a.description_of_version, b.description_of_version);
}

FunctionRecord full_record(std::string name) {
  FunctionRecord rec;
  rec.latest = full_config(name, "$LATEST");
  rec.versions.push_back(full_config(name, "1"));
  auto v2 = full_config(name, "2");
  v2.network_egress.reset();
  rec.versions.push_back(v2);
  rec.aliases.push_back(Alias{"live", "1", "production", AliasRouting{"2", 0.25}, "arev"});
  rec.aliases.push_back(Alias{"beta", "2", "", std::nullopt, "brev"});
  rec.tags = {{"team", "core"}, {"cost", "42"}};
  rec.reserved_concurrency = 7;
  rec.provisioned.push_back(ProvisionedConcurrency{"live", 3, 1700000000999});
  rec.next_version = 3;
  return rec;
}

void expect_same(const FunctionRecord& a, const FunctionRecord& b) {
  expect_same(a.latest, b.latest);
  ASSERT_EQ(a.versions.size(), b.versions.size());
  for (std::size_t i = 0; i < a.versions.size(); ++i) expect_same(a.versions[i], b.versions[i]);
  ASSERT_EQ(a.aliases.size(), b.aliases.size());
  for (std::size_t i = 0; i < a.aliases.size(); ++i) {
    EXPECT_EQ(a.aliases[i].name, b.aliases[i].name);
    EXPECT_EQ(a.aliases[i].function_version, b.aliases[i].function_version);
    EXPECT_EQ(a.aliases[i].description, b.aliases[i].description);
    EXPECT_EQ(a.aliases[i].revision_id, b.aliases[i].revision_id);
    ASSERT_EQ(a.aliases[i].routing.has_value(), b.aliases[i].routing.has_value());
    if (a.aliases[i].routing) {
      EXPECT_EQ(a.aliases[i].routing->version, b.aliases[i].routing->version);
      EXPECT_DOUBLE_EQ(a.aliases[i].routing->weight, b.aliases[i].routing->weight);
    }
  }
  EXPECT_EQ(a.tags, b.tags);
  EXPECT_EQ(a.reserved_concurrency, b.reserved_concurrency);
  ASSERT_EQ(a.provisioned.size(), b.provisioned.size());
  for (std::size_t i = 0; i < a.provisioned.size(); ++i) {
    EXPECT_EQ(a.provisioned[i].qualifier, b.provisioned[i].qualifier);
    EXPECT_EQ(a.provisioned[i].requested, b.provisioned[i].requested);
    EXPECT_EQ(a.provisioned[i].last_modified_ms, b.provisioned[i].last_modified_ms);
  }
  EXPECT_EQ(a.next_version, b.next_version);
}

TEST(Document, RoundTripsEveryField) {
  const auto rec = full_record("fn");
  const auto back = from_document(to_document(rec));
  ASSERT_TRUE(back) << back.error().message;
  expect_same(rec, *back);
}

TEST(Document, MissingFieldsTakeDefaults) {
  const auto rec = from_document(R"({"latest":{"name":"old"}})");
  ASSERT_TRUE(rec) << rec.error().message;
  EXPECT_EQ(rec->latest.name, "old");
  EXPECT_EQ(rec->latest.version, "$LATEST");
  EXPECT_EQ(rec->latest.timeout_s, 3);
  EXPECT_EQ(rec->latest.memory_mb, 128);
  EXPECT_EQ(rec->latest.ephemeral_mb, 512);
  EXPECT_EQ(rec->latest.log_format, "Text");
  EXPECT_FALSE(rec->latest.network_egress.has_value());
  EXPECT_FALSE(rec->reserved_concurrency.has_value());
  EXPECT_EQ(rec->next_version, 1);
  EXPECT_TRUE(rec->versions.empty());
}

TEST(Document, CorruptDocumentIsAnError) {
  for (const char* bad : {"", "{", "[]", R"({"versions":[]})", R"({"latest":{"timeout":"x"}})"}) {
    const auto rec = from_document(bad);
    ASSERT_FALSE(rec) << bad;
    EXPECT_EQ(rec.error().code, Errc::kInternal) << bad;
    EXPECT_THAT(rec.error().message, HasSubstr("corrupt function document")) << bad;
  }
}

TEST(SqliteStore, PutLoadReplaceRemove) {
  lambent::testing::TempDir dir;
  auto store = open_sqlite_store(dir / "lambent.db");
  ASSERT_TRUE(store) << store.error().message;

  auto all = (*store)->load_all();
  ASSERT_TRUE(all);
  EXPECT_TRUE(all->empty());

  ASSERT_TRUE((*store)->put(full_record("b-func")));
  ASSERT_TRUE((*store)->put(full_record("a-func")));
  all = (*store)->load_all();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].latest.name, "a-func");  // ordered by name
  expect_same(full_record("b-func"), (*all)[1]);

  auto changed = full_record("a-func");
  changed.latest.memory_mb = 256;
  changed.versions.clear();
  ASSERT_TRUE((*store)->put(changed));
  all = (*store)->load_all();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 2u);
  EXPECT_EQ((*all)[0].latest.memory_mb, 256);
  EXPECT_TRUE((*all)[0].versions.empty());

  ASSERT_TRUE((*store)->remove("a-func"));
  ASSERT_TRUE((*store)->remove("never-existed"));  // idempotent, like DeleteFunction's store half
  all = (*store)->load_all();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].latest.name, "b-func");
}

TEST(SqliteStore, SurvivesReopen) {
  lambent::testing::TempDir dir;
  const auto path = dir / "lambent.db";
  {
    auto store = open_sqlite_store(path);
    ASSERT_TRUE(store) << store.error().message;
    ASSERT_TRUE((*store)->put(full_record("kept")));
    ASSERT_TRUE((*store)->put(full_record("dropped")));
    ASSERT_TRUE((*store)->remove("dropped"));
  }
  auto store = open_sqlite_store(path);
  ASSERT_TRUE(store) << store.error().message;
  const auto all = (*store)->load_all();
  ASSERT_TRUE(all);
  ASSERT_EQ(all->size(), 1u);
  expect_same(full_record("kept"), (*all)[0]);
}

TEST(SqliteStore, UnopenablePathIsAnIoError) {
  lambent::testing::TempDir dir;
  const auto r = open_sqlite_store(dir / "missing-folder/lambent.db");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().code, Errc::kIo);
  EXPECT_THAT(r.error().message, HasSubstr("missing-folder/lambent.db"));
}

}  // namespace
}  // namespace lambent::registry

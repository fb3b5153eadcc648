#include "core/credentials.hpp"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>

#include "core/ids.hpp"

namespace lambent {
namespace {

class CredentialsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("lambent-unit-creds-" + random_hex(8));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::string path() const { return (dir_ / "credentials").string(); }
  std::filesystem::path dir_;
};

TEST_F(CredentialsTest, CreatedPairReadsBackAndIsPrivate) {
  auto created = create_credentials_file(path());
  ASSERT_TRUE(created) << created.error().message;
  EXPECT_EQ(created->access_key_id.size(), 20u);
  EXPECT_EQ(created->access_key_id.rfind("LKIA", 0), 0u);
  EXPECT_EQ(created->secret_access_key.size(), 40u);
  struct stat st {};
  ASSERT_EQ(::stat(path().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto read = read_credentials_file(path());
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_EQ(read->access_key_id, created->access_key_id);
  EXPECT_EQ(read->secret_access_key, created->secret_access_key);
}

TEST_F(CredentialsTest, ToleratesSpacesAndCarriageReturns) {
  std::ofstream(path())
      << "[default]\r\n  aws_access_key_id =  AKID \r\naws_secret_access_key=s3cr3t\r\n";
  auto read = read_credentials_file(path());
  ASSERT_TRUE(read) << read.error().message;
  EXPECT_EQ(read->access_key_id, "AKID");
  EXPECT_EQ(read->secret_access_key, "s3cr3t");
}

TEST_F(CredentialsTest, MissingFileIsNotFoundAndIncompleteFileIsInvalid) {
  auto missing = read_credentials_file(path());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, Errc::kNotFound);
  std::ofstream(path()) << "[default]\naws_access_key_id = AKID\n";
  auto incomplete = read_credentials_file(path());
  ASSERT_FALSE(incomplete);
  EXPECT_EQ(incomplete.error().code, Errc::kInvalidParameter);
}

}  // namespace
}  // namespace lambent

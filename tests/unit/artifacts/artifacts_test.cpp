#include "artifacts/artifacts.hpp"

#include <archive.h>
#include <archive_entry.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <openssl/sha.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

#include "core/encoding.hpp"
#include "core/files.hpp"
#include "unit/artifacts/zip_builder.hpp"

namespace lambent::artifacts {
namespace {

namespace fs = std::filesystem;
using testing::file;
using testing::folder;
using ::testing::HasSubstr;
using testing::make_zip;
using ::testing::StartsWith;
using testing::symlink;
using testing::ZipEntry;

constexpr std::string_view kPrefix = "Could not unzip uploaded file.";

int perm_of(const std::string& path) {
  struct stat st {};
  EXPECT_EQ(::lstat(path.c_str(), &st), 0) << path;
  return static_cast<int>(st.st_mode & 07777);
}

class ArtifactStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "lambent-artifacts-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    root_ = dir_ + "/store";
  }
  void TearDown() override { fs::remove_all(dir_); }

  ArtifactStore store(Limits limits = {}) { return ArtifactStore(root_, limits); }

  // Everything below the store root except the three empty layout folders.
  std::vector<std::string> leftovers() const {
    std::vector<std::string> out;
    if (!fs::exists(root_)) return out;
    for (auto it = fs::recursive_directory_iterator(root_);
         it != fs::recursive_directory_iterator(); ++it) {
      const std::string rel = fs::relative(it->path(), root_).string();
      if (rel == "blobs" || rel == "tasks" || rel == "tmp") continue;
      out.push_back(rel);
    }
    return out;
  }

  // Asserts a clean rejection: kInvalidParameter, the expected words, nothing stored.
  void expect_rejected(const std::string& zip, const std::string& words, Limits limits = {}) {
    auto s = store(limits);
    auto r = s.put_zip(zip);
    ASSERT_FALSE(r.has_value()) << "accepted; task root " << r->task_root;
    EXPECT_EQ(r.error().code, Errc::kInvalidParameter);
    EXPECT_THAT(r.error().message, HasSubstr(words));
    EXPECT_THAT(leftovers(), ::testing::IsEmpty());
  }

  std::string dir_;
  std::string root_;
};

// ---------------------------------------------------------------- rejections

TEST_F(ArtifactStoreTest, RejectsEmptyInput) {
  expect_rejected("", std::string(kPrefix));
}

TEST_F(ArtifactStoreTest, RejectsBytesThatAreNotAZip) {
  expect_rejected("this is not a zip file at all, just some text", std::string(kPrefix));
}

TEST_F(ArtifactStoreTest, RejectsTarEvenThoughLibarchiveCouldReadIt) {
  std::string tar;
  archive* a = archive_write_new();
  archive_write_set_format_pax_restricted(a);
  archive_write_open(
      a, &tar, nullptr,
      [](archive*, void* c, const void* b, size_t n) -> la_ssize_t {
        static_cast<std::string*>(c)->append(static_cast<const char*>(b), n);
        return static_cast<la_ssize_t>(n);
      },
      nullptr);
  archive_entry* e = archive_entry_new();
  archive_entry_set_pathname(e, "index.py");
  archive_entry_set_filetype(e, AE_IFREG);
  archive_entry_set_perm(e, 0644);
  archive_entry_set_size(e, 5);
  archive_write_header(a, e);
  archive_write_data(a, "hello", 5);
  archive_entry_free(e);
  archive_write_close(a);
  archive_write_free(a);
  ASSERT_GT(tar.size(), 512u);
  expect_rejected(tar, std::string(kPrefix));
}

TEST_F(ArtifactStoreTest, RejectsTruncatedZip) {
  const std::string zip =
      make_zip({file("a.py", std::string(5000, 'a')), file("b.py", "print(1)")});
  expect_rejected(zip.substr(0, zip.size() - 10), std::string(kPrefix));
  expect_rejected(zip.substr(0, zip.size() / 2), std::string(kPrefix));
}

TEST_F(ArtifactStoreTest, RejectsCorruptData) {
  std::mt19937 rng(7);
  std::string text;
  for (int i = 0; i < 100000; ++i) text += "abcdefghij klmnop"[rng() % 17];
  ZipEntry e = file("big.txt", text);
  e.deflate = true;
  std::string zip = make_zip({e});
  zip[zip.size() / 2] ^= 0x55;  // inside the deflate stream
  expect_rejected(zip, std::string(kPrefix));

  std::string stored = make_zip({file("a.txt", "hello world")});
  stored[30 + 5 + 3] ^= 1;  // a byte of the stored data (after the 30-byte header and name)
  expect_rejected(stored, "ZIP bad CRC");
}

TEST_F(ArtifactStoreTest, RejectsZipWithoutEntries) {
  expect_rejected(make_zip({}), std::string(kPrefix));
}

TEST_F(ArtifactStoreTest, RejectsAbsolutePaths) {
  expect_rejected(make_zip({file("/etc/cron.d/x", "boom")}), "'/etc/cron.d/x' is an absolute path");
}

TEST_F(ArtifactStoreTest, RejectsDotDotComponents) {
  expect_rejected(make_zip({file("ok.py", "1"), file("../x", "boom")}),
                  "Entry '../x' escapes the package root");
  expect_rejected(make_zip({file("a/../../x", "boom")}), "'a/../../x' escapes the package root");
  expect_rejected(make_zip({file("a/b/..", "boom")}), "escapes the package root");
}

TEST_F(ArtifactStoreTest, RejectsSymlinkToAbsolutePathAndWritesThroughIt) {
  expect_rejected(make_zip({symlink("link", "/etc"), file("link/passwd", "root::0:0::/:/bin/sh")}),
                  "'link' is a symlink to the absolute path '/etc'");
}

TEST_F(ArtifactStoreTest, RejectsSymlinkClimbingOutOfThePackage) {
  expect_rejected(make_zip({symlink("link", "..")}), "escapes the package root");
  expect_rejected(make_zip({symlink("a/b/link", "../../../etc")}), "escapes the package root");
  // Lexically inside, but "sub/.." is only "." if sub is a real folder.
  expect_rejected(make_zip({folder("sub/"), symlink("link", "sub/../..")}),
                  "has '..' after a name");
}

TEST_F(ArtifactStoreTest, RejectsEntriesThroughAnEarlierSymlink) {
  // Even an internal link is never written through: "d/passwd" must not land in "real/".
  expect_rejected(make_zip({folder("real/"), symlink("d", "real"), file("d/passwd", "x")}),
                  "'d/passwd' passes through the symlink 'd'");
  expect_rejected(make_zip({symlink("up", "."), file("up/up/x", "x")}),
                  "passes through the symlink");
}

TEST_F(ArtifactStoreTest, RejectsDevicesAndSockets) {
  for (const std::uint32_t type : {0020000u, 0060000u, 0140000u}) {
    SCOPED_TRACE(type);
    expect_rejected(make_zip({ZipEntry{"dev", "", type | 0644}}),
                    "'dev' is not a file, folder or symlink");
  }
}

TEST_F(ArtifactStoreTest, FifoEntryBecomesAPlainFile) {
  // libarchive's zip reader reports S_IFIFO entries as regular files, so the unpacker
  // never sees the type; what matters is that no FIFO node is ever created.
  auto pkg = store().put_zip(make_zip({ZipEntry{"pipe", "data", 0010644}}));
  ASSERT_TRUE(pkg.has_value()) << pkg.error().message;
  struct stat st {};
  ASSERT_EQ(::lstat((pkg->task_root + "/pipe").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 07777, 0644u);
}

TEST_F(ArtifactStoreTest, RejectsFolderReplacedByFileAndFileUsedAsFolder) {
  expect_rejected(make_zip({folder("a/"), file("a", "x")}), "'a' would replace a folder");
  expect_rejected(make_zip({file("a/b", "1"), file("a", "x")}), "'a' would replace a folder");
  expect_rejected(make_zip({file("a", "x"), file("a/b", "1")}), "uses the file 'a' as a folder");
  expect_rejected(make_zip({file("a", "x"), folder("a/")}), "would replace a file with a folder");
  expect_rejected(make_zip({folder("a/"), symlink("a", "b")}), "'a' would replace a folder");
}

TEST_F(ArtifactStoreTest, RejectsTooManyEntries) {
  std::vector<ZipEntry> entries;
  for (int i = 0; i < 6; ++i) entries.push_back(file("f" + std::to_string(i), "x"));
  Limits limits;
  limits.max_entries = 5;
  expect_rejected(make_zip(entries), "more than 5 entries", limits);
  entries.pop_back();
  EXPECT_TRUE(store(limits).put_zip(make_zip(entries)).has_value());
}

TEST_F(ArtifactStoreTest, RejectsZippedSizeOverLimit) {
  const std::string zip = make_zip({file("a", std::string(1000, 'a'))});
  Limits limits;
  limits.max_zipped_bytes = zip.size() - 1;
  expect_rejected(zip, "Zipped size must be smaller than", limits);
}

TEST_F(ArtifactStoreTest, RejectsHonestUnpackedSizeOverLimit) {
  Limits limits;
  limits.max_unpacked_bytes = 1 << 20;
  ZipEntry a = file("a.bin", std::string(600 * 1024, 'a'));
  ZipEntry b = file("b.bin", std::string(600 * 1024, 'b'));
  a.deflate = b.deflate = true;
  expect_rejected(make_zip({a, b}), "Unzipped size must be smaller than 1048576 bytes", limits);
}

TEST_F(ArtifactStoreTest, RejectsZipBombWithLyingHeader) {
  Limits limits;
  limits.max_unpacked_bytes = 1 << 20;
  ZipEntry bomb = file("bomb.bin", std::string(2 << 20, '\0'));
  bomb.deflate = true;
  bomb.declared_size = 1000;  // both headers claim 1000 bytes
  const std::string zip = make_zip({bomb});
  ASSERT_LT(zip.size(), 10000u);
  // The count of written bytes stops it, before libarchive's own end-of-entry size check
  // (which would say "wrong size") is ever reached.
  expect_rejected(zip, "Unzipped size must be smaller than 1048576 bytes", limits);
}

TEST_F(ArtifactStoreTest, MutatedArchivesNeverLeaveDebrisOrEscape) {
  // A seeded mini-fuzz under ASan: every mutation is either a clean rejection or a
  // package that remove() takes away completely; nothing ever appears beside the store.
  ZipEntry big = file("lib/mod.py", std::string(3000, 'm'));
  big.deflate = true;
  const std::string seed = make_zip({file("bootstrap", "#!/bin/sh\n", 0755), folder("lib/"), big,
                                     symlink("lib/link", "mod.py"), file("lib/sub/a", "a")});
  constexpr int kRounds = 150;  // accepted mutations cost a syncfs each
  std::mt19937 rng(12345);
  auto s = store();
  int accepted = 0;
  for (int i = 0; i < kRounds; ++i) {
    std::string zip = seed;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int f = 0; f < flips; ++f) zip[rng() % zip.size()] = static_cast<char>(rng());
    auto r = s.put_zip(zip);
    if (r) {
      ASSERT_TRUE(s.remove(r->sha256_hex).has_value());
      ++accepted;
    } else {
      ASSERT_NE(r.error().code, Errc::kInternal) << r.error().message;
    }
    ASSERT_THAT(leftovers(), ::testing::IsEmpty()) << "iteration " << i;
  }
  std::vector<std::string> beside;
  for (const auto& e : fs::directory_iterator(dir_)) beside.push_back(e.path().filename());
  EXPECT_THAT(beside, ::testing::ElementsAre("store"));
  // Both outcomes must have been exercised for the test to mean anything.
  EXPECT_GT(accepted, 0);
  EXPECT_LT(accepted, kRounds);
}

// ---------------------------------------------------------------- good packages

TEST_F(ArtifactStoreTest, UnpacksNestedTreeWithModesAndInternalSymlinks) {
  ZipEntry lib = file("lib/python/pkg/__init__.py", std::string(20000, 'p'));
  lib.deflate = true;
  const std::string zip = make_zip({
      file("bootstrap", "#!/bin/sh\necho hi\n", 0755),
      file("handler.sh", "echo", 0744),
      file("suid", "x", 04755),
      file("data/config.json", "{}", 0600),
      lib,
      folder("empty/"),
      file("./node_modules/typescript/bin/tsc", "tsc", 0755),
      symlink("node_modules/.bin/tsc", "../typescript/bin/tsc"),
      symlink("current", "lib/python"),
  });
  auto s = store();
  auto pkg = s.put_zip(zip);
  ASSERT_TRUE(pkg.has_value()) << pkg.error().message;
  const std::string t = pkg->task_root;
  EXPECT_EQ(t, root_ + "/tasks/" + pkg->sha256_hex);
  EXPECT_EQ(pkg->size, zip.size());
  EXPECT_EQ(pkg->unpacked_size, 18u + 4 + 1 + 2 + 20000 + 3);

  EXPECT_EQ(perm_of(t), 0755);
  EXPECT_EQ(perm_of(t + "/bootstrap"), 0755);
  EXPECT_EQ(perm_of(t + "/handler.sh"), 0755);
  EXPECT_EQ(perm_of(t + "/suid"), 0755);  // setuid dropped
  EXPECT_EQ(perm_of(t + "/data/config.json"), 0644);
  EXPECT_EQ(perm_of(t + "/data"), 0755);
  EXPECT_EQ(perm_of(t + "/lib/python/pkg"), 0755);
  EXPECT_EQ(perm_of(t + "/empty"), 0755);
  EXPECT_EQ(*read_file(t + "/lib/python/pkg/__init__.py"), std::string(20000, 'p'));
  EXPECT_EQ(fs::read_symlink(t + "/node_modules/.bin/tsc"), "../typescript/bin/tsc");
  EXPECT_EQ(*read_file(t + "/node_modules/.bin/tsc"), "tsc");
  EXPECT_TRUE(fs::is_symlink(t + "/current"));
  auto blob = s.read_zip(pkg->sha256_hex);
  ASSERT_TRUE(blob.has_value());
  EXPECT_EQ(*blob, zip);
  EXPECT_TRUE(fs::is_empty(root_ + "/tmp"));
}

TEST_F(ArtifactStoreTest, WindowsEntriesWithoutModeBitsGet0644) {
  ZipEntry boot{"bootstrap", "#!/bin/sh\n", 0, false};
  ZipEntry dir{"win/", "", 0, false};
  ZipEntry inner{"win/app.py", "x", 0, false};
  auto pkg = store().put_zip(make_zip({boot, dir, inner}));
  ASSERT_TRUE(pkg.has_value()) << pkg.error().message;
  // No guessing: the engine reports a non-executable bootstrap.
  EXPECT_EQ(perm_of(pkg->task_root + "/bootstrap"), 0644);
  EXPECT_EQ(perm_of(pkg->task_root + "/win"), 0755);
  EXPECT_EQ(perm_of(pkg->task_root + "/win/app.py"), 0644);
}

TEST_F(ArtifactStoreTest, KeepsUtf8NamesAndEscapesControlBytesInMessages) {
  auto pkg = store().put_zip(make_zip({file("caf\xc3\xa9.txt", "x")}));
  ASSERT_TRUE(pkg.has_value()) << pkg.error().message;
  EXPECT_TRUE(fs::exists(pkg->task_root + "/caf\xc3\xa9.txt"));
  ASSERT_TRUE(store().remove(pkg->sha256_hex).has_value());
  expect_rejected(make_zip({file("../\x1b[31mred", "x")}), "Entry '../\\x1b[31mred' escapes");
}

TEST_F(ArtifactStoreTest, LaterDuplicateFileWins) {
  auto pkg = store().put_zip(make_zip({file("a.txt", "first-long"), file("a.txt", "2nd", 0755)}));
  ASSERT_TRUE(pkg.has_value()) << pkg.error().message;
  EXPECT_EQ(*read_file(pkg->task_root + "/a.txt"), "2nd");
  EXPECT_EQ(perm_of(pkg->task_root + "/a.txt"), 0755);
  EXPECT_EQ(pkg->unpacked_size, 3u);
}

TEST_F(ArtifactStoreTest, UmaskDoesNotDecideModes) {
  const mode_t old = ::umask(077);
  auto pkg = store().put_zip(make_zip({file("d/f.py", "x"), file("d/run", "x", 0700)}));
  ::umask(old);
  ASSERT_TRUE(pkg.has_value()) << pkg.error().message;
  EXPECT_EQ(perm_of(pkg->task_root), 0755);
  EXPECT_EQ(perm_of(pkg->task_root + "/d"), 0755);
  EXPECT_EQ(perm_of(pkg->task_root + "/d/f.py"), 0644);
  EXPECT_EQ(perm_of(pkg->task_root + "/d/run"), 0755);
}

TEST_F(ArtifactStoreTest, CodeSha256IsBase64OfRawSha256) {
  const std::string zip = make_zip({file("index.py", "def handler(e, c):\n    return 1\n")});
  // Independent of core/encoding: OpenSSL's one-shot SHA256, and a fixed value from
  // `openssl dgst -sha256 -binary index.zip | base64` on these exact bytes.
  unsigned char md[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(zip.data()), zip.size(), md);  // bytes view
  const std::string raw(reinterpret_cast<const char*>(md), sizeof(md));        // bytes view
  auto pkg = store().put_zip(zip);
  ASSERT_TRUE(pkg.has_value()) << pkg.error().message;
  EXPECT_EQ(pkg->sha256_base64, base64_encode(raw));
  EXPECT_EQ(pkg->sha256_hex, to_hex(raw));
  EXPECT_EQ(pkg->sha256_base64, "Wqc01kKyBD6/WC1hLQRVko/RNj2cFTmzxgTv16YO8Sc=");
  EXPECT_EQ(pkg->sha256_base64.size(), 44u);
  EXPECT_TRUE(fs::is_regular_file(root_ + "/blobs/" + pkg->sha256_hex + ".zip"));
}

TEST_F(ArtifactStoreTest, SecondPutOfSameBytesIsIdempotent) {
  const std::string zip = make_zip({file("a/b.py", "1"), file("c", "22", 0755)});
  auto s = store();
  auto first = s.put_zip(zip);
  auto second = s.put_zip(zip);
  ASSERT_TRUE(first.has_value() && second.has_value());
  EXPECT_EQ(first->sha256_hex, second->sha256_hex);
  EXPECT_EQ(first->task_root, second->task_root);
  EXPECT_EQ(first->unpacked_size, 3u);
  EXPECT_EQ(second->unpacked_size, 3u);
  EXPECT_EQ(std::distance(fs::directory_iterator(root_ + "/blobs"), fs::directory_iterator()), 1);
  EXPECT_EQ(std::distance(fs::directory_iterator(root_ + "/tasks"), fs::directory_iterator()), 1);
  EXPECT_TRUE(fs::is_empty(root_ + "/tmp"));
}

TEST_F(ArtifactStoreTest, ConcurrentPutsOfSameBytesAllSucceed) {
  const std::string zip = make_zip({file("a/b.py", std::string(50000, 'q')), file("c", "2")});
  auto s = store();
  std::vector<Result<Package>> results(4);
  std::vector<std::thread> threads;
  for (auto& r : results) threads.emplace_back([&] { r = s.put_zip(zip); });
  for (auto& t : threads) t.join();
  for (const auto& r : results) {
    ASSERT_TRUE(r.has_value()) << r.error().message;
    EXPECT_EQ(r->unpacked_size, 50001u);
    EXPECT_EQ(r->task_root, results[0]->task_root);
  }
  EXPECT_EQ(*read_file(results[0]->task_root + "/a/b.py"), std::string(50000, 'q'));
  EXPECT_TRUE(fs::is_empty(root_ + "/tmp"));
  EXPECT_EQ(std::distance(fs::directory_iterator(root_ + "/blobs"), fs::directory_iterator()), 1);
}

TEST_F(ArtifactStoreTest, GetRebuildsMissingTreeFromBlob) {
  auto s = store();
  auto pkg = s.put_zip(make_zip({file("bootstrap", "#!/bin/sh\n", 0755), file("x/y", "yy")}));
  ASSERT_TRUE(pkg.has_value());
  fs::remove_all(pkg->task_root);

  auto again = ArtifactStore(root_, {}).get(pkg->sha256_hex);  // as after a restart
  ASSERT_TRUE(again.has_value()) << again.error().message;
  EXPECT_EQ(again->sha256_base64, pkg->sha256_base64);
  EXPECT_EQ(again->size, pkg->size);
  EXPECT_EQ(again->unpacked_size, pkg->unpacked_size);
  EXPECT_EQ(perm_of(again->task_root + "/bootstrap"), 0755);
  EXPECT_EQ(*read_file(again->task_root + "/x/y"), "yy");

  auto present = s.get(pkg->sha256_hex);
  ASSERT_TRUE(present.has_value());
  EXPECT_EQ(present->unpacked_size, pkg->unpacked_size);
  EXPECT_EQ(present->sha256_base64, pkg->sha256_base64);
}

TEST_F(ArtifactStoreTest, UnknownOrMalformedKeys) {
  auto s = store();
  const std::string unknown(64, 'a');
  EXPECT_EQ(s.get(unknown).error().code, Errc::kNotFound);
  EXPECT_EQ(s.read_zip(unknown).error().code, Errc::kNotFound);
  EXPECT_EQ(s.get("../../etc/passwd").error().code, Errc::kInvalidParameter);
  EXPECT_EQ(s.read_zip(std::string(64, 'A')).error().code, Errc::kInvalidParameter);
  EXPECT_EQ(s.remove("..").error().code, Errc::kInvalidParameter);
}

TEST_F(ArtifactStoreTest, RemoveDeletesBlobAndTree) {
  auto s = store();
  auto pkg = s.put_zip(make_zip({file("a/b", "1")}));
  ASSERT_TRUE(pkg.has_value());
  ASSERT_TRUE(s.remove(pkg->sha256_hex).has_value());
  EXPECT_THAT(leftovers(), ::testing::IsEmpty());
  EXPECT_EQ(s.get(pkg->sha256_hex).error().code, Errc::kNotFound);
  EXPECT_TRUE(s.remove(pkg->sha256_hex).has_value());  // idempotent
}

TEST_F(ArtifactStoreTest, RemoveStaleTemporaries) {
  auto s = store();
  ASSERT_TRUE(s.put_zip(make_zip({file("a", "1")})).has_value());
  fs::create_directories(root_ + "/tmp/deadbeef/sub");
  std::ofstream(root_ + "/blobs/x.zip.tmp-1234") << "partial";
  ASSERT_TRUE(s.remove_stale_temporaries().has_value());
  EXPECT_TRUE(fs::is_empty(root_ + "/tmp"));
  EXPECT_EQ(std::distance(fs::directory_iterator(root_ + "/blobs"), fs::directory_iterator()), 1);
}

// ---------------------------------------------------------------- zip_directory

class ZipDirectoryTest : public ArtifactStoreTest {
 protected:
  std::string make_source() {
    const std::string src = dir_ + "/src";
    fs::create_directories(src + "/lib/deep");
    fs::create_directories(src + "/empty");
    std::ofstream(src + "/bootstrap") << "#!/bin/sh\nexec ./lib/run\n";
    std::ofstream(src + "/lib/run") << "run";
    std::ofstream(src + "/lib/deep/data.json") << std::string(30000, 'd');
    ::chmod((src + "/bootstrap").c_str(), 0755);
    ::chmod((src + "/lib/run").c_str(), 0700);
    ::chmod((src + "/lib/deep/data.json").c_str(), 0600);
    fs::create_symlink("deep/data.json", src + "/lib/data.json");
    return src;
  }
};

TEST_F(ZipDirectoryTest, RoundTripsThroughPutZip) {
  const std::string src = make_source();
  auto zip = zip_directory(src);
  ASSERT_TRUE(zip.has_value()) << zip.error().message;
  auto pkg = store().put_zip(*zip);
  ASSERT_TRUE(pkg.has_value()) << pkg.error().message;
  const std::string t = pkg->task_root;
  EXPECT_EQ(*read_file(t + "/bootstrap"), "#!/bin/sh\nexec ./lib/run\n");
  EXPECT_EQ(perm_of(t + "/bootstrap"), 0755);
  EXPECT_EQ(perm_of(t + "/lib/run"), 0755);
  EXPECT_EQ(perm_of(t + "/lib/deep/data.json"), 0644);
  EXPECT_EQ(*read_file(t + "/lib/deep/data.json"), std::string(30000, 'd'));
  EXPECT_TRUE(fs::is_symlink(t + "/lib/data.json"));
  EXPECT_EQ(fs::read_symlink(t + "/lib/data.json"), "deep/data.json");
  EXPECT_TRUE(fs::is_directory(t + "/empty"));
  EXPECT_EQ(pkg->unpacked_size, 25u + 3 + 30000);
}

TEST_F(ZipDirectoryTest, IsDeterministic) {
  const std::string src = make_source();
  auto first = zip_directory(src);
  ASSERT_TRUE(first.has_value());
  // New mtimes, same content: same bytes.
  fs::last_write_time(src + "/lib/run", fs::file_time_type::clock::now() - std::chrono::hours(50));
  auto second = zip_directory(src);
  ASSERT_TRUE(second.has_value());
  EXPECT_EQ(*first, *second);
}

TEST_F(ZipDirectoryTest, StoresEscapingSymlinkAsLinkWhichPutThenRejects) {
  const std::string src = dir_ + "/src";
  fs::create_directories(src);
  fs::create_symlink("/etc", src + "/etc");
  auto zip = zip_directory(src);
  ASSERT_TRUE(zip.has_value()) << zip.error().message;
  expect_rejected(*zip, "symlink to the absolute path '/etc'");
}

TEST_F(ZipDirectoryTest, MissingFolderIsAnError) {
  EXPECT_FALSE(zip_directory(dir_ + "/nope").has_value());
}

}  // namespace
}  // namespace lambent::artifacts

// What `dmarcd ingest` reads: the files behind the paths it is given, and
// the messages inside an mbox file.
#pragma once

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "parser/envelope.hpp"
#include "parser/error.hpp"

namespace dmarcd::server {

// Expands the command-line paths into the files to read, in order: a file
// as is; a folder recursively, sorted by name, skipping hidden entries
// (".name") and a Maildir's tmp/ (files still being delivered); "-" stays
// "-" (stdin). A Maildir's cur/ and new/ hold one message per file and need
// nothing special. kInvalidArgument when a path does not exist.
Result<std::vector<std::string>> CollectInputs(const std::vector<std::string>& paths);

// True for the mbox format: the first line is a "From " separator.
bool IsMbox(std::string_view bytes);

// Splits an mbox (mboxo or mboxrd, RFC 4155) into its messages: every line
// that begins with "From " starts a new message and is not part of it; one
// ">" is removed from lines of the form ">From ", ">>From " (mboxrd quoting);
// the blank line that separates messages is dropped.
std::vector<std::string> SplitMbox(std::string_view bytes);

// A file read in chunks (parser::EnvelopeSource), for an input too large
// to hold in memory. Size() is the size at Open; a file that changes
// between passes is the caller's fault and shows as an error where it can.
class FileSource final : public parser::EnvelopeSource {
 public:
  // kIo when the file cannot be opened or its size read.
  static Result<std::unique_ptr<FileSource>> Open(const std::string& path, std::string origin);

  const std::string& Origin() const override { return origin_; }
  uint64_t Size() const override { return size_; }
  Result<void> Rewind() override;
  Result<size_t> Read(std::span<char> buffer) override;

 private:
  FileSource(std::FILE* file, std::string path, std::string origin, uint64_t size)
      : file_(file, &std::fclose),
        path_(std::move(path)),
        origin_(std::move(origin)),
        size_(size) {}

  std::unique_ptr<std::FILE, int (*)(std::FILE*)> file_;
  std::string path_;
  std::string origin_;
  uint64_t size_;
};

}  // namespace dmarcd::server

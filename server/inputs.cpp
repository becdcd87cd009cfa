#include "server/inputs.hpp"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <set>
#include <system_error>

namespace dmarcd::server {
namespace {

namespace fs = std::filesystem;

bool IsHidden(const fs::path& path) {
  const std::string name = path.filename().string();
  return !name.empty() && name.front() == '.';
}

// A Maildir's tmp/ sits beside cur/ and new/; a folder that merely has that
// name is read like any other.
bool IsMaildirTmp(const fs::path& path) {
  std::error_code ec;
  if (path.filename() != "tmp") return false;
  const fs::path parent = path.parent_path();
  return fs::is_directory(parent / "cur", ec) || fs::is_directory(parent / "new", ec);
}

// `visited` holds the canonical paths of the folders read so far: a link
// back up the tree ("loop -> ..") or a second link to one folder is read
// once, not until the path grows too long.
Result<void> Walk(const fs::path& folder, std::vector<std::string>& out,
                  std::set<fs::path>& visited) {
  std::error_code ec;
  const fs::path real = fs::canonical(folder, ec);
  if (!ec && !visited.insert(real).second) return {};
  std::vector<fs::path> entries;
  for (fs::directory_iterator it(folder, ec), end; !ec && it != end; it.increment(ec)) {
    entries.push_back(it->path());
  }
  if (ec)
    return MakeError(ErrorCode::kIo, "cannot read folder " + folder.string() + ": " + ec.message());
  std::sort(entries.begin(), entries.end());

  for (const fs::path& entry : entries) {
    if (IsHidden(entry)) continue;
    if (fs::is_directory(entry, ec)) {
      if (IsMaildirTmp(entry)) continue;
      if (auto r = Walk(entry, out, visited); !r) return r;
    } else if (fs::is_regular_file(entry, ec)) {
      out.push_back(entry.string());
    }
  }
  return {};
}

bool StartsWith(std::string_view text, std::string_view prefix) {
  return text.substr(0, prefix.size()) == prefix;
}

}  // namespace

Result<std::vector<std::string>> CollectInputs(const std::vector<std::string>& paths) {
  std::vector<std::string> files;
  std::set<fs::path> visited;
  for (const std::string& path : paths) {
    std::error_code ec;
    if (path != "-" && fs::is_directory(path, ec)) {
      if (auto r = Walk(path, files, visited); !r) return tl::unexpected(r.error());
    } else if (path == "-" || fs::exists(path, ec)) {
      files.push_back(path);
    } else {
      return MakeError(ErrorCode::kInvalidArgument, "no such file or folder: " + path);
    }
  }
  return files;
}

bool IsMbox(std::string_view bytes) { return StartsWith(bytes, "From "); }

std::vector<std::string> SplitMbox(std::string_view bytes) {
  std::vector<std::string> messages;
  std::string current;
  bool in_message = false;

  auto finish = [&] {
    // The separator line is preceded by an empty line that belongs to the
    // mbox, not to the message (RFC 4155 Appendix A).
    if (current.size() >= 2 && current.ends_with("\n\n")) current.pop_back();
    if (current.size() >= 4 && current.ends_with("\r\n\r\n")) current.resize(current.size() - 2);
    if (in_message) messages.push_back(std::move(current));
    current.clear();
  };

  size_t pos = 0;
  while (pos < bytes.size()) {
    size_t eol = bytes.find('\n', pos);
    const size_t next = eol == std::string_view::npos ? bytes.size() : eol + 1;
    std::string_view line = bytes.substr(pos, next - pos);
    pos = next;

    if (StartsWith(line, "From ")) {
      finish();
      in_message = true;
      continue;
    }
    const size_t quotes = line.find_first_not_of('>');
    if (quotes != std::string_view::npos && quotes > 0 &&
        StartsWith(line.substr(quotes), "From ")) {
      line.remove_prefix(1);
    }
    current.append(line);
  }
  finish();
  return messages;
}

Result<std::unique_ptr<FileSource>> FileSource::Open(const std::string& path, std::string origin) {
  std::error_code ec;
  const uintmax_t size = fs::file_size(path, ec);
  if (ec) return MakeError(ErrorCode::kIo, "cannot read the size of " + path + ": " + ec.message());
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return MakeError(ErrorCode::kIo, "cannot open " + path);
  return std::unique_ptr<FileSource>(new FileSource(file, path, std::move(origin), size));
}

Result<void> FileSource::Rewind() {
  if (std::fseek(file_.get(), 0, SEEK_SET) != 0) {
    return MakeError(ErrorCode::kIo, "cannot go back to the start of " + path_);
  }
  return {};
}

Result<size_t> FileSource::Read(std::span<char> buffer) {
  const size_t read = std::fread(buffer.data(), 1, buffer.size(), file_.get());
  if (read < buffer.size() && std::ferror(file_.get()) != 0) {
    return MakeError(ErrorCode::kIo, "cannot read " + path_);
  }
  return read;
}

}  // namespace dmarcd::server
